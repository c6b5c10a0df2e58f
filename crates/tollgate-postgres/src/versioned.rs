//! S2's two paths on PostgreSQL rows: an optimistic compare-and-set of a versioned value
//! ([`VersionedRows`], driven by [`tollgate::versioned::update_with_retry`]), and a pessimistic
//! lock that is **not** a session-level advisory lock ([`PostgresStore::locked`]).
//!
//! Session-level advisory locks (`pg_advisory_lock`) belong to the server session, not to the
//! transaction: behind a transaction-pooling proxy (PgBouncer) the session is shared by other
//! clients, so a lock leaks to them, or an unlock runs on another session and leaves the lock
//! held. `locked` takes `pg_advisory_xact_lock` inside its own transaction instead: released
//! by the commit or rollback, whatever the proxy does with the session.
//!
//! ```no_run
//! use tollgate_postgres::PostgresStore;
//! use tollgate_postgres::tollgate::store::{Key, StoreError, StoreErrorKind};
//! use tollgate_postgres::tollgate::versioned::update_with_retry;
//!
//! # async fn example(store: PostgresStore) -> Result<(), Box<dyn std::error::Error>> {
//! let wallets = store.versioned();
//! let wallet = Key::new("wallet", "user-1");
//! wallets.insert(&wallet, &1_000_u64).await?;
//! let bought = update_with_retry(
//!     10,
//!     || wallets.read::<u64>(&wallet),
//!     |balance: &u64| {
//!         let refused = || StoreError::msg(StoreErrorKind::Rejected, "insufficient funds");
//!         balance.checked_sub(300).ok_or_else(refused)
//!     },
//!     |version, balance| wallets.compare_and_set(&wallet, version, balance),
//! );
//! assert_eq!(bought.await?.value, 700);
//! # Ok(())
//! # }
//! ```

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::Transaction;
use tollgate::once::{decode, encode};
use tollgate::store::{Key, StoreError, StoreErrorKind};
use tollgate::versioned::Versioned;

use crate::error::db;
use crate::store::{Params, PostgresStore};

/// Versioned values in the store's `versioned` table, one per [`Key`], serialized with
/// `serde_json`. Every method is one statement; from [`PostgresStore::versioned`].
#[derive(Clone, Debug)]
pub struct VersionedRows {
    store: PostgresStore,
}

impl PostgresStore {
    /// The store's versioned values (the optimistic path).
    pub fn versioned(&self) -> VersionedRows {
        VersionedRows {
            store: self.clone(),
        }
    }

    /// Runs `f` in a transaction holding a transaction-level lock on `key`
    /// (`pg_advisory_xact_lock` of the key's hash, waited for at most the store's timeout,
    /// then [`StoreErrorKind::Busy`]), and commits when `f` succeeds: the pessimistic path.
    /// Callers locking the same key run one at a time; the lock ends with the transaction, so
    /// it never leaks through a transaction-pooling proxy. (Two keys whose hashes collide
    /// also wait for each other: slower, never unsafe.)
    pub async fn locked<R, F>(&self, key: &Key, f: F) -> Result<R, StoreError>
    where
        R: Send,
        F: for<'t> FnOnce(&'t Transaction<'t>) -> BoxFuture<'t, Result<R, tokio_postgres::Error>>
            + Send,
    {
        let timeout_ms = crate::time::ms(self.inner().timeout);
        self.bounded("a locked transaction", async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db)?;
            let limit = format!("SET LOCAL lock_timeout = {timeout_ms}");
            tx.batch_execute(&limit).await.map_err(db)?;
            let lock = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
            tx.execute(lock, &[&key.encode()]).await.map_err(db)?;
            let done = f(&tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(done)
        })
        .await
    }
}

impl VersionedRows {
    /// Stores `value` at version 0 under `key` unless the key has a value; whether it did.
    pub async fn insert<T: Serialize + Sync>(
        &self,
        key: &Key,
        value: &T,
    ) -> Result<bool, StoreError> {
        let s = self.store.schema();
        let sql = format!(
            "INSERT INTO {s}.versioned (namespace, key, value, version) VALUES ($1, $2, $3, 0) \
             ON CONFLICT DO NOTHING"
        );
        let bytes = encoded(value)?;
        let params: &Params<'_> = &[&key.namespace(), &key.key(), &bytes];
        Ok(self.execute(&sql, params).await? == 1)
    }

    /// The value of `key` and its version; [`StoreErrorKind::Rejected`] when it has none.
    pub async fn read<T: DeserializeOwned>(&self, key: &Key) -> Result<Versioned<T>, StoreError> {
        let s = self.store.schema();
        let sql =
            format!("SELECT value, version FROM {s}.versioned WHERE namespace = $1 AND key = $2");
        let params: &Params<'_> = &[&key.namespace(), &key.key()];
        let rows = self
            .store
            .bounded("a versioned read", async {
                let client = self.store.client().await?;
                let statement = client.prepare_cached(&sql).await.map_err(db)?;
                client.query(&statement, params).await.map_err(db)
            })
            .await?;
        let row = rows.first().ok_or_else(|| {
            StoreError::msg(
                StoreErrorKind::Rejected,
                format!("no versioned value for {key}"),
            )
        })?;
        let bytes: Vec<u8> = row.try_get(0).map_err(db)?;
        let version: i64 = row.try_get(1).map_err(db)?;
        Ok(Versioned {
            value: decode(&bytes).map_err(|e| crate::error::corrupt(e.0))?,
            version: u64::try_from(version).unwrap_or(0),
        })
    }

    /// Writes `value` only if `key` is still at version `expected` (one `UPDATE … WHERE
    /// version = $expected`, which increments it); whether it wrote.
    pub async fn compare_and_set<T: Serialize + Send>(
        &self,
        key: &Key,
        expected: u64,
        value: T,
    ) -> Result<bool, StoreError> {
        let s = self.store.schema();
        let sql = format!(
            "UPDATE {s}.versioned SET value = $3, version = version + 1 \
             WHERE namespace = $1 AND key = $2 AND version = $4"
        );
        let bytes = encoded(&value)?;
        let expected = i64::try_from(expected).unwrap_or(i64::MAX);
        let params: &Params<'_> = &[&key.namespace(), &key.key(), &bytes, &expected];
        Ok(self.execute(&sql, params).await? == 1)
    }

    async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, StoreError> {
        self.store
            .bounded("a versioned write", async {
                let client = self.store.client().await?;
                let statement = client.prepare_cached(sql).await.map_err(db)?;
                client.execute(&statement, params).await.map_err(db)
            })
            .await
    }
}

fn encoded<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    encode(value).map_err(|e| StoreError::msg(StoreErrorKind::Rejected, e.0))
}
