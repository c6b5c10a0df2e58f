//! [`SqliteStore`]: exactly-once records in an SQLite database file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use tollgate::once::{ClaimOutcome, ClaimRequest, Record, Resolution, Store, transition};
use tollgate::store::{Key, Settle, StoreError, Timeline, Timestamp, Token};

use crate::schema;
use crate::worker::Worker;

/// A [`Store`] in an SQLite file, shared safely by every process that opens the same file.
///
/// See the [crate](crate) docs for the connection model. Its time is the host's wall clock
/// ([`Timeline::system`]): every process on the host judges leases by the same clock. Clones
/// share the connection.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    worker: Worker,
    timeline: Timeline,
}

/// Options of a [`SqliteStore`]; from [`SqliteStore::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct Builder {
    path: PathBuf,
    busy_timeout: Duration,
    timeline: Timeline,
}

impl Builder {
    /// How long an operation waits for another connection's write lock before it fails with
    /// [`StoreErrorKind::Busy`](tollgate::store::StoreErrorKind::Busy) (default 5 s).
    pub fn busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// The store's time (default: the host's wall clock). Tests give every handle on one file
    /// the same [`Timeline::from_clock`] to move leases and retention by hand.
    pub fn timeline(mut self, timeline: Timeline) -> Self {
        self.timeline = timeline;
        self
    }

    /// Opens (creating if needed) the database: WAL journal, `synchronous = FULL`, and the
    /// `tollgate_once` table.
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        let worker = Worker::start(self.path, self.busy_timeout, schema::setup).await?;
        Ok(SqliteStore {
            worker,
            timeline: self.timeline,
        })
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with the default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder(path).open().await
    }

    /// Like [`SqliteStore::open`], waiting at most `busy_timeout` for another process's write
    /// lock before an operation fails.
    pub async fn open_with_busy_timeout(
        path: impl AsRef<Path>,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        Self::builder(path).busy_timeout(busy_timeout).open().await
    }

    /// Options for the database at `path`.
    pub fn builder(path: impl AsRef<Path>) -> Builder {
        Builder {
            path: path.as_ref().to_path_buf(),
            busy_timeout: Duration::from_secs(5),
            timeline: Timeline::system(),
        }
    }

    /// The store's current time.
    pub fn now(&self) -> Timestamp {
        self.timeline.now()
    }

    /// Runs `f` on this store's connection thread (never on the async runtime's threads), for
    /// the application's own statements in the same database — an atomic conditional update,
    /// a multi-statement transaction. A panic in `f` reaches only this call, as an
    /// [`StoreErrorKind::Other`](tollgate::store::StoreErrorKind::Other) error; the transaction
    /// it left open is rolled back and the store goes on serving.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        self.worker.call(f).await
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction with the store's time when the write
    /// lock was taken; `f` commits or lets the transaction roll back.
    pub(crate) async fn immediate<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(Transaction<'_>, Timestamp) -> rusqlite::Result<R> + Send + 'static,
    {
        let timeline = self.timeline.clone();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            f(tx, timeline.now())
        })
        .await
    }

    /// Applies `apply` to the key's record in one `BEGIN IMMEDIATE` transaction: the write lock
    /// is taken before the read, so no other connection can change the record in between.
    async fn settle<F>(&self, key: &Key, apply: F) -> Result<Settle, StoreError>
    where
        F: FnOnce(Option<&Record>, Timestamp) -> Option<Record> + Send + 'static,
    {
        let key = key.clone();
        self.immediate(move |tx, now| {
            let Some(record) = apply(schema::read(&tx, &key)?.as_ref(), now) else {
                return Ok(Settle::Fenced);
            };
            schema::write(&tx, &key, &record)?;
            tx.commit()?;
            Ok(Settle::Accepted)
        })
        .await
    }
}

impl Store for SqliteStore {
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        self.immediate(move |tx, now| {
            let step = transition::claim(schema::read(&tx, &req.key)?.as_ref(), &req, now);
            if let Some(record) = &step.write {
                schema::write(&tx, &req.key, record)?;
                tx.commit()?;
            }
            Ok(step.outcome)
        })
        .await
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        self.settle(key, move |r, now| transition::renew(r, token, lease, now))
            .await
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        self.settle(key, move |r, now| {
            transition::complete(r, token, result, retention, now)
        })
        .await
    }

    async fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        self.settle(key, move |r, now| {
            transition::fail(r, token, error, retryable, retention, now)
        })
        .await
    }

    async fn resolve(
        &self,
        key: &Key,
        previous: Token,
        resolution: Resolution,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        self.settle(key, move |r, now| {
            transition::resolve(r, previous, resolution, retention, now)
        })
        .await
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        let key = key.clone();
        self.call(move |conn| schema::read(conn, &key)).await
    }

    async fn purge(&self) -> Result<u64, StoreError> {
        let now = self.now();
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
