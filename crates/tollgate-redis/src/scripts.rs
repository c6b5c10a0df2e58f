//! The Lua scripts: one per store operation, each the whole operation (read, decide, write,
//! expire, notify) in one atomic step on the server.
//!
//! A record is one string key (see [`crate::keys`]) holding eight MessagePack values, packed
//! and unpacked by the `cmsgpack` library every Redis (and Valkey) server bundles for its
//! scripts; an absent value is `nil`:
//!
//! | # | value   | meaning                                                        |
//! |---|---------|----------------------------------------------------------------|
//! | 1 | `fp`    | the fingerprint (bytes)                                        |
//! | 2 | `fence` | the fence (integer); there is no separate fence counter key    |
//! | 3 | `st`    | `p` in progress, `u` unknown, `c` completed, `f` failed        |
//! | 4 | `owner` | the holder (decimal `u128`, a string), while `p` or `u`         |
//! | 5 | `lease` | the lease's end, store ms, while `p`                           |
//! | 6 | `res`   | the result or error (bytes), once `c` or `f`                   |
//! | 7 | `retry` | `1` / `0`, once `f`                                            |
//! | 8 | `exp`   | the end of retention, store ms, once `c` or `f`                |
//!
//! One string rather than a hash because every command a script sends costs the server
//! microseconds of bookkeeping: a fresh claim is `TIME` and one `SET … NX GET PX` (which also
//! returns the record when the key is taken), a settlement `TIME`, `GET`, `SET … PX` and
//! `PUBLISH` (`INFO commandstats` figures in docs/PERFORMANCE.md). `SET … NX GET` needs
//! Redis 7.0 or later, which [`Builder::connect`](crate::Builder::connect) checks.
//!
//! Every script takes the store's time in `ARGV[1]`: empty means the server's `TIME` (always,
//! outside tests), a number is the test hook of [`Builder::manual_time`](crate::Builder::manual_time).
//! Every write sets the key's expiry, relative (`PX`), so the server's own clock deletes
//! it: a finished record `exp + grace`, an attempt in progress its lease plus the lapsed
//! retention, an unknown one the lapsed retention. Numbers sent back to the client are written
//! with `%d` so Lua's doubles never reach it in exponent form (times and fences stay far below
//! 2^53; MessagePack stores them as integers).

use std::sync::LazyLock;

use redis::Script;

/// Shared by every script: the store's time and the record's values.
pub(crate) const PRELUDE: &str = r#"
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n) return string.format('%d', n) end
-- An expiry in ms as PX and PEXPIRE take it: at least 1 (Redis refuses 0, and PEXPIRE 0
-- deletes the key at once).
local function px(n) return int(math.max(1, n)) end
local function wrong_type(reply)
  return redis.error_reply('CORRUPT tollgate record ' .. KEYS[1] ..
    ' is not a string record (a key of another program, or a hash record of an earlier ' ..
    'tollgate-redis: delete it or let it expire): ' .. tostring(reply.err))
end
local function decode(v)
  if not v then return nil end
  local ok, fp, fence, st, owner, lease, res, retry, exp = pcall(cmsgpack.unpack, v)
  if not ok or type(fence) ~= 'number' or type(st) ~= 'string' then
    return nil, redis.error_reply('CORRUPT tollgate record ' .. KEYS[1] ..
      ' does not decode (a key of another program?)')
  end
  return { fp = fp, fence = fence, st = st, owner = owner, lease = lease, res = res,
           retry = retry, exp = exp }
end
local function pack(r)
  return cmsgpack.pack(r.fp, r.fence, r.st, r.owner, r.lease, r.res, r.retry, r.exp)
end
local function holds(r, owner, fence)
  return r ~= nil and (r.st == 'p' or r.st == 'u') and r.owner == owner and r.fence == fence
end
"#;

/// `KEYS[1]` record; `ARGV`: now, fingerprint, owner, lease ms, on-expired (`t` take over,
/// `u` mark unknown, `f` take over from), from-owner, from-fence, waiting-for fence (or empty),
/// lapsed retention ms.
///
/// Answers `{'acquired', fence, took_owner, took_fence}` (empty strings when nothing was
/// taken over), `{'in_progress', owner, fence, lease_until}`, `{'completed', result}`,
/// `{'failed', error, retry}`, `{'mismatch'}` or `{'unknown', owner, fence}`.
const CLAIM: &str = r#"
local key, fp, owner = KEYS[1], ARGV[2], ARGV[3]
local lease, mode, lapsed = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[9])
local now = now_ms()
local function attempt(fence)
  return pack({ fp = fp, fence = fence, st = 'p', owner = owner, lease = now + lease })
end
local old = redis.pcall('SET', key, attempt(1), 'NX', 'GET', 'PX', px(lease + lapsed))
if type(old) == 'table' and old.err then return wrong_type(old) end
if not old then return { 'acquired', '1', '', '' } end
local r, err = decode(old)
if err then return err end
local function acquire(fence, took_owner, took_fence)
  redis.call('SET', key, attempt(fence), 'PX', px(lease + lapsed))
  return { 'acquired', int(fence), took_owner, took_fence }
end
if ARGV[8] ~= '' and r.st == 'f' and r.fence == tonumber(ARGV[8]) and r.fp == fp then
  return { 'failed', r.res, r.retry }
end
if (r.exp ~= nil and r.exp <= now) or (r.st == 'f' and r.retry == '1') then
  return acquire(r.fence + 1, '', '')
end
if r.fp ~= fp then return { 'mismatch' } end
if r.st == 'p' and r.lease > now then
  return { 'in_progress', r.owner, int(r.fence), int(r.lease) }
end
if r.st == 'p' or r.st == 'u' then
  local take = mode == 't' or (mode == 'f' and ARGV[6] == r.owner and tonumber(ARGV[7]) == r.fence)
  if take then return acquire(r.fence + 1, r.owner, int(r.fence)) end
  if r.st ~= 'u' then
    r.st, r.lease = 'u', nil
    redis.call('SET', key, pack(r), 'PX', px(lapsed))
  end
  return { 'unknown', r.owner, int(r.fence) }
end
if r.st == 'c' then return { 'completed', r.res } end
if r.st == 'f' then return { 'failed', r.res, r.retry } end
return redis.error_reply('CORRUPT tollgate record in unknown state')
"#;

/// Reads `KEYS[1]` (the record, or nothing): `GET`, with a type check.
const LOAD: &str = r#"
local function load()
  local v = redis.pcall('GET', KEYS[1])
  if type(v) == 'table' and v.err then return nil, wrong_type(v) end
  return decode(v)
end
"#;

/// `KEYS[1]` record; `ARGV`: now, owner, fence, lease ms, lapsed retention ms. Answers 1
/// (accepted) or 0 (fenced).
const RENEW: &str = r#"
local r, err = load()
if err then return err end
if not holds(r, ARGV[2], tonumber(ARGV[3])) then return 0 end
local lease = tonumber(ARGV[4])
r.st, r.lease = 'p', now_ms() + lease
redis.call('SET', KEYS[1], pack(r), 'PX', px(lease + tonumber(ARGV[5])))
return 1
"#;

/// Complete, fail and resolve. `KEYS[1]` record; `ARGV`: now, owner, fence, state (`c`/`f`),
/// result or error, retry (`1`/`0`, for `f`), retention ms, grace ms, `1` to settle only an
/// attempt of unknown outcome (resolve), the channel to publish the settled key on. Answers
/// 1 (accepted) or 0 (fenced).
const FINISH: &str = r#"
local key = KEYS[1]
local now = now_ms()
local r, err = load()
if err then return err end
if not holds(r, ARGV[2], tonumber(ARGV[3])) then return 0 end
if ARGV[9] == '1' and not (r.st == 'u' or r.lease <= now) then return 0 end
local retention = tonumber(ARGV[7])
local retry = nil
if ARGV[4] == 'f' then retry = ARGV[6] end
local done = { fp = r.fp, fence = r.fence, st = ARGV[4], res = ARGV[5], retry = retry,
               exp = now + retention }
redis.call('SET', key, pack(done), 'PX', px(retention + tonumber(ARGV[8])))
redis.call('PUBLISH', ARGV[10], key)
return 1
"#;

/// `KEYS[1]` record; `ARGV`: now. Deletes a finished record past its retention: 1, else 0.
const PURGE: &str = r#"
local r, err = load()
if err then return err end
if r ~= nil and r.exp ~= nil and r.exp <= now_ms() then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// `KEYS[1]` record. Answers its values as name/value pairs (absent ones left out), or an
/// empty array when there is no record.
const READ: &str = r#"
local r, err = load()
if err then return err end
if r == nil then return {} end
local out = {}
for _, name in ipairs({ 'fp', 'fence', 'st', 'owner', 'lease', 'res', 'retry', 'exp' }) do
  local v = r[name]
  if v ~= nil then
    if type(v) == 'number' then v = int(v) end
    out[#out + 1] = name
    out[#out + 1] = v
  end
end
return out
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

fn loading(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{LOAD}{body}"))
}

/// The claim script.
pub(crate) static CLAIM_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CLAIM));
/// The renew script.
pub(crate) static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| loading(RENEW));
/// The complete / fail / resolve script.
pub(crate) static FINISH_SCRIPT: LazyLock<Script> = LazyLock::new(|| loading(FINISH));
/// The purge-one-key script.
pub(crate) static PURGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| loading(PURGE));
/// The read-one-record script.
pub(crate) static READ_SCRIPT: LazyLock<Script> = LazyLock::new(|| loading(READ));
