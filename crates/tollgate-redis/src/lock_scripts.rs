//! The Lua scripts of [`RedisLockStore`](crate::RedisLockStore) and of
//! [`fenced_hset`](crate::fenced_hset): each one atomic step on the server.
//!
//! A lock is one hash, `<prefix>lock:{<namespace length>:<namespace><key>}` (hash-tagged, so a
//! cluster keeps it on one slot):
//!
//! | field   | meaning                                                         |
//! |---------|-----------------------------------------------------------------|
//! | `fence` | the fence of the latest holder (decimal): the key's fence counter |
//! | `owner` | the holder (decimal `u128`), while held                          |
//! | `lease` | the end of the holder's lease, store ms, while held              |
//!
//! The fence counter is a field of the lock's own hash, not a key of its own, and every write
//! sets the hash's expiry (`PEXPIRE`, on the server's clock) to the lease plus the fence
//! retention (a release: the retention): nothing outlives the lock's key family. Every script
//! takes the store's time in `ARGV[1]` as the once scripts do (empty: the server's `TIME`).

use std::sync::LazyLock;

use redis::Script;

use crate::scripts::PRELUDE;

/// `KEYS[1]` lock; `ARGV`: now, owner, lease ms, retention ms. Answers `{1, owner, fence,
/// lease_until}` when acquired, `{0, holder, fence, lease_until}` when a live lease holds it.
const ACQUIRE: &str = r#"
local key, owner, lease, keep = KEYS[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local v = redis.call('HMGET', key, 'fence', 'owner', 'lease')
local fence = tonumber(v[1]) or 0
if v[2] and tonumber(v[3]) > now then
  return { 0, v[2], int(fence), v[3] }
end
local lease_until = now + lease
redis.call('HSET', key, 'fence', int(fence + 1), 'owner', owner, 'lease', int(lease_until))
redis.call('PEXPIRE', key, px(lease + keep))
return { 1, owner, int(fence + 1), int(lease_until) }
"#;

/// Whether `ARGV[2]` (owner) and `ARGV[3]` (fence) hold `KEYS[1]`, expired lease or not.
const HOLDS: &str = r#"
local function holds()
  local v = redis.call('HMGET', KEYS[1], 'fence', 'owner')
  return v[2] == ARGV[2] and v[1] == ARGV[3]
end
"#;

/// `KEYS[1]` lock; `ARGV`: now, owner, fence, lease ms, retention ms. Answers 1 (renewed) or 0
/// (fenced).
const RENEW: &str = r#"
if not holds() then return 0 end
local lease = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'lease', int(now_ms() + lease))
redis.call('PEXPIRE', KEYS[1], px(lease + tonumber(ARGV[5])))
return 1
"#;

/// `KEYS[1]` lock; `ARGV`: now (unused), owner, fence, retention ms. Answers 1 (released; the
/// fence stays) or 0 (not the holder: nothing changed).
const RELEASE: &str = r#"
if not holds() then return 0 end
redis.call('HDEL', KEYS[1], 'owner', 'lease')
redis.call('PEXPIRE', KEYS[1], px(tonumber(ARGV[4])))
return 1
"#;

/// `KEYS[1]` lock; `ARGV`: now, owner, fence, the next owner, lease ms, retention ms. Hands the
/// key to the next owner with the next fence: `{fence, lease_until}`, or `{}` (not the holder:
/// nothing changed).
const HAND_OVER: &str = r#"
if not holds() then return {} end
local fence, lease = tonumber(ARGV[3]) + 1, tonumber(ARGV[5])
local lease_until = now_ms() + lease
redis.call('HSET', KEYS[1], 'fence', int(fence), 'owner', ARGV[4], 'lease', int(lease_until))
redis.call('PEXPIRE', KEYS[1], px(lease + tonumber(ARGV[6])))
return { int(fence), int(lease_until) }
"#;

/// `KEYS[1]` the protected hash; `ARGV`: the fence field, the writer's fence, then field/value
/// pairs. Writes them and the fence only if no higher fence was written before: 1, else 0.
const FENCED_HSET: &str = r#"
local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if stored == nil or stored > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], unpack(ARGV, 3))
return 1
"#;

fn lock_script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{HOLDS}{body}"))
}

/// The acquisition script.
pub(crate) static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| lock_script(ACQUIRE));
/// The renewal script.
pub(crate) static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| lock_script(RENEW));
/// The release script.
pub(crate) static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| lock_script(RELEASE));
/// The hand-over script.
pub(crate) static HAND_OVER_SCRIPT: LazyLock<Script> = LazyLock::new(|| lock_script(HAND_OVER));
/// The fenced write to a protected hash.
pub(crate) static FENCED_HSET_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(FENCED_HSET));
