//! The Lua scripts: one per store operation, each the whole operation (read, decide, write,
//! expire, notify) in one atomic step on the server.
//!
//! A record is one hash (see [`crate::keys`]):
//!
//! | field   | meaning                                                        |
//! |---------|----------------------------------------------------------------|
//! | `fp`    | the fingerprint (bytes)                                        |
//! | `fence` | the fence (decimal); there is no separate fence counter key    |
//! | `st`    | `p` in progress, `u` unknown, `c` completed, `f` failed        |
//! | `owner` | the holder (decimal `u128`), while `p` or `u`                   |
//! | `lease` | the lease's end, store ms, while `p`                           |
//! | `res`   | the result or error (bytes), once `c` or `f`                   |
//! | `retry` | `1` / `0`, once `f`                                            |
//! | `exp`   | the end of retention, store ms, once `c` or `f`                |
//!
//! Every script takes the store's time in `ARGV[1]`: empty means the server's `TIME` (always,
//! outside tests), a number is the test hook of [`Builder::manual_time`](crate::Builder::manual_time).
//! Every write sets the key's expiry, relative (`PEXPIRE`), so the server's own clock deletes
//! it: a finished record `exp + grace`, an attempt in progress its lease plus the lapsed
//! retention, an unknown one the lapsed retention. Numbers are written with `%d` so Lua's
//! doubles never reach Redis in exponent form (times and fences stay far below 2^53).

use std::sync::LazyLock;

use redis::Script;

/// Shared by every script: the store's time and the record's fields.
pub(crate) const PRELUDE: &str = r#"
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n) return string.format('%d', n) end
local function load(key)
  local v = redis.call('HMGET', key, 'fp', 'fence', 'st', 'owner', 'lease', 'res', 'retry', 'exp')
  if not v[2] then return nil end
  return { fp = v[1], fence = tonumber(v[2]), st = v[3], owner = v[4],
           lease = tonumber(v[5]), res = v[6], retry = v[7], exp = tonumber(v[8]) }
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
local r = load(key)
local function acquire(fence, took_owner, took_fence)
  if r ~= nil then redis.call('DEL', key) end
  redis.call('HSET', key, 'fp', fp, 'fence', int(fence), 'st', 'p', 'owner', owner,
             'lease', int(now + lease))
  redis.call('PEXPIRE', key, int(lease + lapsed))
  return { 'acquired', int(fence), took_owner, took_fence }
end
if r == nil then return acquire(1, '', '') end
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
    redis.call('HSET', key, 'st', 'u')
    redis.call('HDEL', key, 'lease')
    redis.call('PEXPIRE', key, int(lapsed))
  end
  return { 'unknown', r.owner, int(r.fence) }
end
if r.st == 'c' then return { 'completed', r.res } end
if r.st == 'f' then return { 'failed', r.res, r.retry } end
return redis.error_reply('CORRUPT tollgate record in unknown state')
"#;

/// `KEYS[1]` record; `ARGV`: now, owner, fence, lease ms, lapsed retention ms. Answers 1
/// (accepted) or 0 (fenced).
const RENEW: &str = r#"
local r = load(KEYS[1])
if not holds(r, ARGV[2], tonumber(ARGV[3])) then return 0 end
local lease = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'st', 'p', 'lease', int(now_ms() + lease))
redis.call('PEXPIRE', KEYS[1], int(lease + tonumber(ARGV[5])))
return 1
"#;

/// Complete, fail and resolve. `KEYS[1]` record; `ARGV`: now, owner, fence, state (`c`/`f`),
/// result or error, retry (`1`/`0`, for `f`), retention ms, grace ms, `1` to settle only an
/// attempt of unknown outcome (resolve), the channel to publish the settled key on. Answers
/// 1 (accepted) or 0 (fenced).
const FINISH: &str = r#"
local key = KEYS[1]
local now = now_ms()
local r = load(key)
if not holds(r, ARGV[2], tonumber(ARGV[3])) then return 0 end
if ARGV[9] == '1' and not (r.st == 'u' or r.lease <= now) then return 0 end
local retention = tonumber(ARGV[7])
if ARGV[4] == 'f' then
  redis.call('HDEL', key, 'owner', 'lease')
  redis.call('HSET', key, 'st', 'f', 'res', ARGV[5], 'exp', int(now + retention), 'retry', ARGV[6])
else
  redis.call('HDEL', key, 'owner', 'lease', 'retry')
  redis.call('HSET', key, 'st', ARGV[4], 'res', ARGV[5], 'exp', int(now + retention))
end
redis.call('PEXPIRE', key, int(retention + tonumber(ARGV[8])))
redis.call('PUBLISH', ARGV[10], key)
return 1
"#;

/// `KEYS[1]` record; `ARGV`: now. Deletes a finished record past its retention: 1, else 0.
const PURGE: &str = r#"
local r = load(KEYS[1])
if r ~= nil and r.exp ~= nil and r.exp <= now_ms() then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// The claim script.
pub(crate) static CLAIM_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CLAIM));
/// The renew script.
pub(crate) static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(RENEW));
/// The complete / fail / resolve script.
pub(crate) static FINISH_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(FINISH));
/// The purge-one-key script.
pub(crate) static PURGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PURGE));
