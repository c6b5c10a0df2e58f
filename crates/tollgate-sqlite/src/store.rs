//! [`SqliteStore`]: exactly-once records in an SQLite database file.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};
use tollgate::once::{
    ClaimOutcome, ClaimRequest, Key, Record, Settle, Store, StoreError, Timestamp, Token,
    transition,
};

use crate::schema;
use crate::worker::Worker;

/// A [`Store`] in an SQLite file, shared safely by every process that opens the same file.
///
/// See the [crate](crate) docs for the connection model. Clones share the connection.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    worker: Worker,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`: WAL journal, `synchronous = FULL`,
    /// a 5 s busy timeout, and the `tollgate_once` table.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_busy_timeout(path, Duration::from_secs(5)).await
    }

    /// Like [`SqliteStore::open`], waiting at most `busy_timeout` for another process's write
    /// lock before an operation fails.
    pub async fn open_with_busy_timeout(
        path: impl AsRef<Path>,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let worker = Worker::start(path, busy_timeout, schema::setup).await?;
        Ok(SqliteStore { worker })
    }

    /// Runs `f` on this store's connection thread (never on the async runtime's threads), for
    /// the application's own statements in the same database — an atomic conditional update,
    /// a multi-statement transaction.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        self.worker.call(f).await
    }

    /// Applies `apply` to the key's record in one `BEGIN IMMEDIATE` transaction: the write lock
    /// is taken before the read, so no other connection can change the record in between.
    async fn settle<F>(&self, key: &Key, apply: F) -> Result<Settle, StoreError>
    where
        F: FnOnce(Option<&Record>) -> Option<Record> + Send + 'static,
    {
        let key = key.clone();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(record) = apply(schema::read(&tx, &key)?.as_ref()) else {
                return Ok(Settle::Fenced);
            };
            schema::write(&tx, &key, &record)?;
            tx.commit()?;
            Ok(Settle::Done)
        })
        .await
    }
}

impl Store for SqliteStore {
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let step = transition::claim(schema::read(&tx, &req.key)?.as_ref(), &req);
            if let Some(record) = &step.write {
                schema::write(&tx, &req.key, record)?;
                tx.commit()?;
            }
            Ok(step.outcome)
        })
        .await
    }

    async fn renew(
        &self,
        key: &Key,
        token: Token,
        lease_until: Timestamp,
    ) -> Result<Settle, StoreError> {
        self.settle(key, move |r| transition::renew(r, token, lease_until))
            .await
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        expires_at: Timestamp,
    ) -> Result<Settle, StoreError> {
        self.settle(key, move |r| {
            transition::complete(r, token, result, expires_at)
        })
        .await
    }

    async fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        expires_at: Timestamp,
    ) -> Result<Settle, StoreError> {
        self.settle(key, move |r| {
            transition::fail(r, token, error, retryable, expires_at)
        })
        .await
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        let key = key.clone();
        self.call(move |conn| schema::read(conn, &key)).await
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.call(move |conn| {
            let removed = conn.execute(
                "DELETE FROM tollgate_once WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                params![schema::ms(now)],
            )?;
            Ok(removed as u64)
        })
        .await
    }
}
