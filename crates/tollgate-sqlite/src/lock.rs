//! [`SqliteLockStore`]: leased, fenced locks in an SQLite database.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use tollgate::lock::{Acquisition, LockRecord, LockState, LockStore, Release, transition};
use tollgate::store::{Fence, Key, Owner, Settle, StoreError, Timestamp, Token};

use crate::schema::ms;
use crate::store::SqliteStore;

/// A released lock has no owner and no lease; its row (and fence) stays forever.
const TABLE: &str = "CREATE TABLE IF NOT EXISTS tollgate_locks (
    namespace   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    fence       INTEGER NOT NULL,
    owner       BLOB,
    lease_until INTEGER,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;";

/// A [`LockStore`] in an SQLite database, on the connection thread of a [`SqliteStore`]:
/// every operation is one `BEGIN IMMEDIATE` transaction applying the shared
/// [`transition`]s, with the store's time ([`SqliteStore::now`]) taken once the write lock is
/// held. Rows are never deleted, so fences never decrease. Clones share the connection.
///
/// ```
/// use std::time::Duration;
/// use tollgate_sqlite::{SqliteLockStore, SqliteStore};
/// use tollgate_sqlite::tollgate::lock::{Locks, Wait};
/// use tollgate_sqlite::tollgate::store::Key;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("app.db")).await?;
/// let locks = Locks::new(SqliteLockStore::new(store).await?);
/// let guard = locks.acquire(Key::new("wallet", "1"), Duration::from_secs(10), Wait::Fail).await?;
/// assert_eq!(guard.fence().0, 1);
/// guard.release().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteLockStore {
    store: SqliteStore,
}

impl SqliteLockStore {
    /// The locks in `store`'s database, creating their table if needed.
    pub async fn new(store: SqliteStore) -> Result<Self, StoreError> {
        store.call(|c| c.execute_batch(TABLE)).await?;
        Ok(SqliteLockStore { store })
    }

    /// The store whose connection and time the locks use.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Applies `apply` to the key's record in one `BEGIN IMMEDIATE` transaction, writing the
    /// record it returns.
    async fn step<R, F>(&self, key: &Key, apply: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(Option<&LockRecord>, Timestamp) -> (R, Option<LockRecord>) + Send + 'static,
    {
        let key = key.clone();
        self.store
            .immediate(move |tx, now| {
                let (answer, write) = apply(read(&tx, &key)?.as_ref(), now);
                if let Some(record) = write {
                    store(&tx, &key, &record)?;
                    tx.commit()?;
                }
                Ok(answer)
            })
            .await
    }
}

impl LockStore for SqliteLockStore {
    async fn acquire(
        &self,
        key: &Key,
        owner: Owner,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        self.step(key, move |r, now| {
            let step = transition::acquire(r, owner, lease, now);
            (step.outcome, step.write)
        })
        .await
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        self.step(key, move |r, now| {
            match transition::renew(r, token, lease, now) {
                Some(record) => (Settle::Accepted, Some(record)),
                None => (Settle::Fenced, None),
            }
        })
        .await
    }

    async fn release(&self, key: &Key, token: Token) -> Result<Release, StoreError> {
        self.step(key, move |r, _| transition::release(r, token))
            .await
    }

    async fn read(&self, key: &Key) -> Result<Option<LockRecord>, StoreError> {
        let key = key.clone();
        self.store.call(move |conn| read(conn, &key)).await
    }

    /// One `BEGIN IMMEDIATE` transaction (one fsync) instead of a release and an acquisition.
    async fn hand_over(
        &self,
        key: &Key,
        from: Token,
        to: Owner,
        lease: Duration,
    ) -> Result<Option<Acquisition>, StoreError> {
        self.step(key, move |r, now| {
            match transition::hand_over(r, from, to, lease, now) {
                Some(record) => match record.state {
                    LockState::Held { lease_until, .. } => {
                        let token = Token {
                            owner: to,
                            fence: record.fence,
                        };
                        let acquired = Acquisition::Acquired { token, lease_until };
                        (Some(acquired), Some(record))
                    }
                    LockState::Released => (None, None),
                },
                None => (None, None),
            }
        })
        .await
    }
}

fn read(conn: &Connection, key: &Key) -> rusqlite::Result<Option<LockRecord>> {
    conn.query_row(
        "SELECT fence, owner, lease_until FROM tollgate_locks WHERE namespace = ?1 AND key = ?2",
        params![key.namespace(), key.key()],
        record,
    )
    .optional()
}

fn store(conn: &Connection, key: &Key, record: &LockRecord) -> rusqlite::Result<()> {
    let (owner, lease_until) = match record.state {
        LockState::Held { owner, lease_until } => {
            (Some(owner.0.to_be_bytes().to_vec()), Some(ms(lease_until)))
        }
        LockState::Released => (None, None),
    };
    conn.execute(
        "INSERT OR REPLACE INTO tollgate_locks (namespace, key, fence, owner, lease_until) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key.namespace(),
            key.key(),
            i64::try_from(record.fence.0).unwrap_or(i64::MAX),
            owner,
            lease_until
        ],
    )?;
    Ok(())
}

fn record(row: &Row<'_>) -> rusqlite::Result<LockRecord> {
    let owner: Option<Vec<u8>> = row.get(1)?;
    let lease_until: Option<u64> = row.get(2)?;
    let state = match (owner, lease_until) {
        (Some(bytes), Some(lease_until)) => {
            let bytes: [u8; 16] = bytes.try_into().map_err(|_| invalid(1))?;
            LockState::Held {
                owner: Owner(u128::from_be_bytes(bytes)),
                lease_until: Timestamp(lease_until),
            }
        }
        (None, None) => LockState::Released,
        _ => return Err(invalid(2)),
    };
    Ok(LockRecord {
        fence: Fence(row.get(0)?),
        state,
    })
}

fn invalid(column: usize) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(column, "tollgate_locks".into(), rusqlite::types::Type::Null)
}
