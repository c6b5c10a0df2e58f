//! [`RedisLockStore`]: leased, fenced locks on Redis, one Lua script per operation.

use std::time::Duration;

use redis::ScriptInvocation;
use tollgate::lock::{Acquisition, LockRecord, LockState, LockStore, Release};
use tollgate::store::{Fence, Key, Owner, Settle, StoreError, Timestamp, Token};

use crate::error::corrupt;
use crate::keys::Prefix;
use crate::lock_scripts::{ACQUIRE_SCRIPT, HAND_OVER_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT};
use crate::store::{RedisStore, ms};

/// How long a lock's hash (and so its fence) is kept after its last lease ended or it was
/// released, by default: 7 days.
const FENCE_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A [`LockStore`] on the server (or cluster) of a [`RedisStore`], for
/// [`tollgate::lock::Locks`].
///
/// - **Every operation is one Lua script** (acquire, renew, release, hand-over; `EVALSHA`), so 500 racers
///   acquire a key exactly once (conformance
///   `lock_conformance::store_acquire_race_of_500_tasks_acquires_exactly_once`).
/// - **The server's clock decides** (`TIME` inside the script; [`ManualTime`](crate::ManualTime)
///   in tests); callers pass durations.
/// - **The fence counter expires with the lock**: it is a field of the lock's one hash,
///   `<store prefix>lock:{<key>}` (hash-tagged for a cluster), whose expiry every write sets to
///   the lease plus the fence retention ([`RedisLockStore::fence_retention`], 7 days by
///   default): no key outlives its lock family. The price: a key left unused for longer than
///   the retention starts again at fence 1, so a resource that stored a higher fence rejects
///   the new holder until its fence is reset — keep the retention longer than any key stays
///   idle, or longer than the resource keeps its fences.
///
/// Pair it with [`fenced_hset`](crate::fenced_hset) (or a SQL `fenced_update`) so the
/// protected data rejects a replaced holder's write. Clones share the store's connection.
///
/// ```no_run
/// use std::time::Duration;
/// use tollgate_redis::{RedisLockStore, RedisStore, fenced_hset};
/// use tollgate_redis::tollgate::lock::{Locks, Wait};
/// use tollgate_redis::tollgate::store::Key;
///
/// # async fn example(url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect(url).await?;
/// let locks = Locks::new(RedisLockStore::new(store));
/// let guard = locks.acquire(Key::new("wallet", "1"), Duration::from_secs(10), Wait::Fail).await?;
/// let mut data = tollgate_redis::redis::Client::open(url)?.get_multiplexed_async_connection().await?;
/// // Applied only if no later holder of the lock wrote the hash.
/// let written = fenced_hset(&mut data, "wallet:1", "fence", guard.fence(), &[("balance", b"700")]).await?;
/// guard.release().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RedisLockStore {
    store: RedisStore,
    prefix: Prefix,
    retention: Duration,
}

impl RedisLockStore {
    /// The locks beside `store`'s records (prefix `<store prefix>lock:`), with the default
    /// fence retention.
    pub fn new(store: RedisStore) -> Self {
        RedisLockStore {
            prefix: store.inner.prefix.locks(),
            store,
            retention: FENCE_RETENTION,
        }
    }

    /// How long a lock's hash — its fence — is kept after its last lease ended or it was
    /// released (default 7 days); see the type's docs for the trade-off.
    pub fn fence_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The store whose connection and time the locks use.
    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    fn call<'a>(&self, script: &'a redis::Script, key: &Key) -> ScriptInvocation<'a> {
        let mut call = script.key(self.prefix.record(key));
        call.arg(self.store.now_arg());
        call
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        call: &ScriptInvocation<'_>,
        what: &str,
    ) -> Result<T, StoreError> {
        let inner = &self.store.inner;
        inner.conn.script(call, inner.timeout, what).await
    }
}

impl LockStore for RedisLockStore {
    async fn acquire(
        &self,
        key: &Key,
        owner: Owner,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        let mut call = self.call(&ACQUIRE_SCRIPT, key);
        call.arg(owner.0.to_string())
            .arg(ms(lease))
            .arg(ms(self.retention));
        let (acquired, holder, fence, until): (i64, String, u64, u64) =
            self.run(&call, "lock acquire").await?;
        let token = Token {
            owner: Owner(holder.parse().map_err(|_| corrupt("a lock owner"))?),
            fence: Fence(fence),
        };
        let lease_until = Timestamp(until);
        Ok(match acquired {
            1 => Acquisition::Acquired { token, lease_until },
            _ => Acquisition::Held {
                holder: token,
                lease_until,
            },
        })
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        let mut call = self.call(&RENEW_SCRIPT, key);
        call.arg(token.owner.0.to_string())
            .arg(token.fence.0)
            .arg(ms(lease))
            .arg(ms(self.retention));
        let renewed: i64 = self.run(&call, "lock renew").await?;
        Ok(match renewed {
            1 => Settle::Accepted,
            _ => Settle::Fenced,
        })
    }

    async fn release(&self, key: &Key, token: Token) -> Result<Release, StoreError> {
        let mut call = self.call(&RELEASE_SCRIPT, key);
        call.arg(token.owner.0.to_string())
            .arg(token.fence.0)
            .arg(ms(self.retention));
        let released: i64 = self.run(&call, "lock release").await?;
        Ok(match released {
            1 => Release::Released,
            _ => Release::NotHolder,
        })
    }

    async fn hand_over(
        &self,
        key: &Key,
        from: Token,
        to: Owner,
        lease: Duration,
    ) -> Result<Option<Acquisition>, StoreError> {
        let mut call = self.call(&HAND_OVER_SCRIPT, key);
        call.arg(from.owner.0.to_string())
            .arg(from.fence.0)
            .arg(to.0.to_string())
            .arg(ms(lease))
            .arg(ms(self.retention));
        let handed: Vec<u64> = self.run(&call, "lock hand-over").await?;
        Ok(match handed.as_slice() {
            [fence, until] => Some(Acquisition::Acquired {
                token: Token {
                    owner: to,
                    fence: Fence(*fence),
                },
                lease_until: Timestamp(*until),
            }),
            _ => None,
        })
    }

    async fn read(&self, key: &Key) -> Result<Option<LockRecord>, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.prefix.record(key))
            .arg("fence")
            .arg("owner")
            .arg("lease");
        let inner = &self.store.inner;
        let (fence, owner, lease): (Option<u64>, Option<String>, Option<u64>) =
            inner.conn.command(&cmd, inner.timeout, "lock read").await?;
        let Some(fence) = fence else {
            return Ok(None);
        };
        let state = match (owner, lease) {
            (Some(owner), Some(lease)) => LockState::Held {
                owner: Owner(owner.parse().map_err(|_| corrupt("a lock owner"))?),
                lease_until: Timestamp(lease),
            },
            (None, None) => LockState::Released,
            _ => {
                return Err(corrupt(
                    "a lock hash with an owner but no lease, or a lease alone",
                ));
            }
        };
        Ok(Some(LockRecord {
            fence: Fence(fence),
            state,
        }))
    }
}
