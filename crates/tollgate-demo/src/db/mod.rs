//! The service's SQLite database: letters, reports and their analyses, wallets — one file
//! per concern: the tables (`schema.rs`), errors and their classification (`error.rs`), the
//! pool (`pool.rs`), and one file per domain (`letters.rs`, `reports.rs`, `wallets.rs`).
//!
//! Two ways in, on purpose:
//! - **Writes of the guarded paths** run on the connection thread of the [`SqliteStore`] (the
//!   same one that holds the exactly-once records), each in one `BEGIN IMMEDIATE` transaction:
//!   the write lock is taken before anything is read, so a transaction never has to upgrade a
//!   stale read snapshot, and never meets a lock error.
//! - **A pool of connections** (like the original service's pool of 20) serves reads, and the
//!   naive path of S3, which opens a deferred transaction, reads, calls the LLM, then writes:
//!   the connection and its transaction are held across the network call, which is the bug.
//!
//! Every database error is classified; busy / locked answers (SQLite's deadlock avoidance and
//! lock timeout) are counted per path in [`LockErrors`] and in
//! `tollgate_demo_db_lock_errors_total{path}`.

mod error;
mod letters;
mod pool;
mod questions;
mod reports;
mod schema;
mod wallets;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate::store::StoreError;
use tollgate_sqlite::rusqlite::{self, Connection, TransactionBehavior};
use tollgate_sqlite::{SqliteOutbox, SqliteStore};

pub use error::{CodePath, DbError, LockErrors};
pub use letters::{Letter, letters_of};
pub use pool::{Pool, PooledConn};
pub use questions::{SavedQuestions, save_questions};
pub use reports::{Report, StoredAnalysis, insert_report};
pub use wallets::{Purchase, PurchaseRefused, Wallet};

use schema::SCHEMA;

/// How long a connection waits for another's write lock before it reports `busy`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The service's database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    path: PathBuf,
    store: SqliteStore,
    outbox: SqliteOutbox,
    pool: Pool,
    lock_errors: Arc<LockErrors>,
}

impl Db {
    /// Opens (creating if needed) the database file at `path`, with `pool_size` pooled
    /// connections for reads and the naive path.
    ///
    /// # Errors
    /// When the file cannot be opened or the schema not created.
    pub async fn open(path: impl AsRef<Path>, pool_size: usize) -> Result<Db, DbError> {
        let path = path.as_ref().to_path_buf();
        let store = SqliteStore::open_with_busy_timeout(&path, BUSY_TIMEOUT)
            .await
            .map_err(|e| DbError::from_store(&e))?;
        store
            .call(|conn| conn.execute_batch(SCHEMA))
            .await
            .map_err(|e| DbError::from_store(&e))?;
        let outbox = SqliteOutbox::new(store.clone())
            .await
            .map_err(|e| DbError::from_store(&e))?;
        Ok(Db {
            pool: Pool::new(path.clone(), pool_size.max(1)),
            path,
            store,
            outbox,
            lock_errors: Arc::new(LockErrors::default()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The exactly-once store sharing this database.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// The durable outbox of side effects, in this database.
    pub fn outbox(&self) -> &SqliteOutbox {
        &self.outbox
    }

    /// The pool (the naive path uses it directly).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Lock errors so far, per path.
    pub fn lock_errors(&self) -> &LockErrors {
        &self.lock_errors
    }

    /// Classifies `e`, counting it when it is a lock error.
    pub fn classify(&self, path: CodePath, e: &rusqlite::Error) -> DbError {
        let error = DbError::from_sqlite(e);
        if matches!(error, DbError::Locked(_)) {
            self.lock_errors.add(path);
        }
        error
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the store's connection thread.
    pub(super) async fn write<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<R> + Send + 'static,
    {
        let result = self
            .store
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            })
            .await;
        result.map_err(|e| self.classify_store(&e))
    }

    /// Classifies a failure of the store (the exactly-once records or a guarded write),
    /// counting it for the guarded path when it is a lock error.
    pub fn classify_store(&self, e: &StoreError) -> DbError {
        let error = DbError::from_store(e);
        if matches!(error, DbError::Locked(_)) {
            self.lock_errors.add(CodePath::Guarded);
        }
        error
    }

    /// Checks that a pooled connection can read the database.
    ///
    /// # Errors
    /// A database failure.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    /// Runs the read `f` on a pooled connection.
    pub(super) async fn read<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let mut conn = self.pool.get().await?;
        match conn.run(f).await? {
            Ok(value) => Ok(value),
            Err(e) => Err(self.classify(CodePath::Guarded, &e)),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
