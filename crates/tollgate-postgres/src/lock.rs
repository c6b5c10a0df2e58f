//! [`PgLockStore`]: leased, fenced locks in a PostgreSQL table, shared by every instance.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Row;
use tollgate::lock::{Acquisition, LockRecord, LockState, LockStore, Release};
use tollgate::store::{Fence, Key, Owner, Settle, StoreError, Token};

use crate::error::{corrupt, db};
use crate::lock_sql::LockStatements;
use crate::store::{Params, PostgresStore, fence, owner_bytes, owner_of, timestamp};
use crate::time::ms;

/// A [`LockStore`] in the `<schema>.locks` table of a [`PostgresStore`] (migration 5), for
/// [`tollgate::lock::Locks`].
///
/// - **Every operation is one statement, one round trip**: an acquisition is one call of the
///   `lock_acquire` function (one `INSERT … ON CONFLICT … DO UPDATE … WHERE <free>`; see the
///   `lock_sql` module's source for why a function); renew, release and the hand-over to a
///   waiter of the same process are one `UPDATE` each, fenced by owner and fence. 500 racers acquire a key exactly once (conformance
///   `lock_conformance::store_acquire_race_of_500_tasks_acquires_exactly_once`).
/// - **The server's clock decides** whether a lease ended (`clock_timestamp()`, or the
///   store's [`PinnedTime`](crate::PinnedTime) in tests); callers pass durations.
/// - **No session-level advisory locks**: a lease is a row, so a transaction-pooling proxy
///   (PgBouncer) cannot leak it, and a crashed holder's lease simply runs out (test
///   `lock_faults::a_killed_holder_process_is_taken_over_after_its_lease_with_a_higher_fence_postgres`).
/// - **Fences never decrease**: rows are never deleted; a released lock keeps its fence.
///
/// Pair it with [`fenced_update`](crate::fenced_update) so the protected rows reject a
/// replaced holder's write. Clones share the store's pool.
///
/// ```no_run
/// use std::time::Duration;
/// use tollgate_postgres::{PgLockStore, PostgresStore, fenced_update};
/// use tollgate_postgres::tollgate::lock::{Locks, Wait};
/// use tollgate_postgres::tollgate::store::Key;
///
/// # async fn example(url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect(url).await?;
/// let locks = Locks::new(PgLockStore::new(store.clone()));
/// let guard = locks.acquire(Key::new("wallet", "1"), Duration::from_secs(10), Wait::Fail).await?;
/// let client = store.pool().get().await?;
/// // Applied only if no later holder of the lock wrote the row.
/// let written = fenced_update(&**client, "wallets", "id", &1_i64, "fence", guard.fence(),
///                             &[("balance", &700_i64)]).await?;
/// guard.release().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PgLockStore {
    store: PostgresStore,
    sql: Arc<LockStatements>,
}

impl PgLockStore {
    /// The locks in `store`'s schema (its migrations created the table).
    pub fn new(store: PostgresStore) -> Self {
        PgLockStore {
            sql: Arc::new(LockStatements::new(&store.inner().schema)),
            store,
        }
    }

    /// The store whose pool, schema and time the locks use.
    pub fn store(&self) -> &PostgresStore {
        &self.store
    }
}

impl LockStore for PgLockStore {
    async fn acquire(
        &self,
        key: &Key,
        owner: Owner,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        let (who, millis, pinned) = (owner_bytes(owner).to_vec(), ms(lease), self.store.pinned());
        let params: &Params<'_> = &[&key.namespace(), &key.key(), &who, &millis, &pinned];
        let rows = self
            .store
            .query("a lock acquisition", &self.sql.acquire, params)
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| corrupt("the lock acquisition answered no row"))?;
        let acquired: bool = row.try_get(0).map_err(db)?;
        let token = Token {
            owner: owner_of(row.try_get(2).map_err(db)?)?,
            fence: fence_of(row.try_get(1).map_err(db)?),
        };
        let lease_until = timestamp(row.try_get(3).map_err(db)?);
        Ok(match acquired {
            true => Acquisition::Acquired { token, lease_until },
            false => Acquisition::Held {
                holder: token,
                lease_until,
            },
        })
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        let (who, f) = (owner_bytes(token.owner).to_vec(), fence(token.fence));
        let (pinned, millis) = (self.store.pinned(), ms(lease));
        let params: &Params<'_> = &[&key.namespace(), &key.key(), &who, &f, &pinned, &millis];
        let rows = self
            .store
            .query("a lock renewal", &self.sql.renew, params)
            .await?;
        Ok(match rows.is_empty() {
            true => Settle::Fenced,
            false => Settle::Accepted,
        })
    }

    async fn release(&self, key: &Key, token: Token) -> Result<Release, StoreError> {
        let (who, f) = (owner_bytes(token.owner).to_vec(), fence(token.fence));
        let params: &Params<'_> = &[&key.namespace(), &key.key(), &who, &f];
        let rows = self
            .store
            .query("a lock release", &self.sql.release, params)
            .await?;
        Ok(match rows.is_empty() {
            true => Release::NotHolder,
            false => Release::Released,
        })
    }

    async fn hand_over(
        &self,
        key: &Key,
        from: Token,
        to: Owner,
        lease: Duration,
    ) -> Result<Option<Acquisition>, StoreError> {
        let (who, f) = (owner_bytes(from.owner).to_vec(), fence(from.fence));
        let (pinned, next, millis) = (self.store.pinned(), owner_bytes(to).to_vec(), ms(lease));
        let params: &Params<'_> = &[
            &key.namespace(),
            &key.key(),
            &who,
            &f,
            &pinned,
            &next,
            &millis,
        ];
        let rows = self
            .store
            .query("a lock hand-over", &self.sql.hand_over, params)
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Acquisition::Acquired {
            token: Token {
                owner: to,
                fence: fence_of(row.try_get(0).map_err(db)?),
            },
            lease_until: timestamp(row.try_get(1).map_err(db)?),
        }))
    }

    async fn read(&self, key: &Key) -> Result<Option<LockRecord>, StoreError> {
        let params: &Params<'_> = &[&key.namespace(), &key.key()];
        let rows = self
            .store
            .query("a lock read", &self.sql.read, params)
            .await?;
        rows.first().map(record).transpose()
    }
}

fn fence_of(value: i64) -> Fence {
    Fence(u64::try_from(value).unwrap_or(0))
}

fn record(row: &Row) -> Result<LockRecord, StoreError> {
    let owner: Option<&[u8]> = row.try_get(1).map_err(db)?;
    let lease_until: Option<i64> = row.try_get(2).map_err(db)?;
    let state = match (owner, lease_until) {
        (Some(owner), Some(lease_until)) => LockState::Held {
            owner: owner_of(owner)?,
            lease_until: timestamp(lease_until),
        },
        (None, None) => LockState::Released,
        _ => {
            return Err(corrupt(
                "a lock row with an owner but no lease, or a lease alone",
            ));
        }
    };
    Ok(LockRecord {
        fence: fence_of(row.try_get(0).map_err(db)?),
        state,
    })
}

impl fmt::Debug for PgLockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLockStore")
            .field("store", &self.store)
            .finish()
    }
}
