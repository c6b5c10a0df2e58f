//! The service's tables on SQLite, one file per concern: the tables (`schema.rs`), one file
//! per domain (`letters.rs`, `reports.rs`, `wallets.rs`, `questions.rs`) and the naive paths
//! (`naive.rs`).
//!
//! Two ways in, on purpose:
//! - **Writes of the guarded paths** run on the connection thread of the [`SqliteStore`] (the
//!   same one that holds the exactly-once records), each in one `BEGIN IMMEDIATE` transaction:
//!   the write lock is taken before anything is read, so a transaction never has to upgrade a
//!   stale read snapshot, and never meets a lock error.
//! - **A pool of connections** (`deadpool-sqlite`, like the original service's pool of 20)
//!   serves reads, and the naive path of S3, which opens a deferred transaction, reads, calls
//!   the LLM, then writes: the connection and its transaction are held across the network
//!   call, which is the bug.

mod letters;
mod naive;
mod questions;
mod reports;
mod schema;
mod wallets;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deadpool_sqlite::{Hook, HookError, Pool, Runtime};
use tollgate_sqlite::rusqlite::{self, Connection, TransactionBehavior};
use tollgate_sqlite::{SqliteOutbox, SqliteStore};

pub use reports::insert_report;

use super::error::{CodePath, DbError, LockErrors};
use super::model::{
    Letter, NaiveReport, NaiveSave, Purchase, PurchaseRefused, Report, SavedQuestions, Wallet,
};
use super::repo::{PaidCall, Repository};
use crate::validate::Day;
use crate::wire::AnalyzeResponse;

/// How long a connection waits for another's write lock before it reports `busy`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The service's tables in one SQLite file; cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    path: PathBuf,
    store: SqliteStore,
    outbox: SqliteOutbox,
    pool: Pool,
    lock_errors: Arc<LockErrors>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database file at `path`, with `pool_size` pooled
    /// connections for reads and the naive path.
    pub(super) async fn open(
        path: &Path,
        pool_size: usize,
        lock_errors: Arc<LockErrors>,
    ) -> Result<SqliteDb, DbError> {
        let store = SqliteStore::open_with_busy_timeout(path, BUSY_TIMEOUT)
            .await
            .map_err(|e| DbError::from_store(&e))?;
        store
            .call(|conn| conn.execute_batch(schema::SCHEMA))
            .await
            .map_err(|e| DbError::from_store(&e))?;
        let outbox = SqliteOutbox::new(store.clone())
            .await
            .map_err(|e| DbError::from_store(&e))?;
        let pool = deadpool_sqlite::Config::new(path)
            .builder(Runtime::Tokio1)
            .map_err(|e| DbError::Other(e.to_string()))?
            .max_size(pool_size.max(1))
            .post_create(Hook::async_fn(|conn, _| {
                Box::pin(async move {
                    conn.interact(|c| {
                        c.busy_timeout(BUSY_TIMEOUT)?;
                        c.pragma_update(None, "foreign_keys", "ON")
                    })
                    .await
                    .map_err(|e| HookError::message(e.to_string()))?
                    .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| DbError::Other(e.to_string()))?;
        Ok(SqliteDb {
            path: path.to_path_buf(),
            store,
            outbox,
            pool,
            lock_errors,
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

    /// Classifies `e`, counting it when it is a lock error.
    fn classify(&self, path: CodePath, e: &rusqlite::Error) -> DbError {
        let error = DbError::from_sqlite(e);
        if matches!(error, DbError::Locked(_)) {
            self.lock_errors.add(path);
        }
        error
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the store's connection thread.
    async fn write<R, F>(&self, f: F) -> Result<R, DbError>
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
        result.map_err(|e| {
            let error = DbError::from_store(&e);
            if matches!(error, DbError::Locked(_)) {
                self.lock_errors.add(CodePath::Guarded);
            }
            error
        })
    }

    /// Runs the read `f` on a pooled connection.
    async fn read<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let conn = self.pool.get().await.map_err(DbError::pool)?;
        match conn.interact(move |c| f(c)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.classify(CodePath::Guarded, &e)),
            Err(e) => Err(DbError::Other(e.to_string())),
        }
    }
}

impl Repository for SqliteDb {
    async fn ping(&self) -> Result<(), DbError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    async fn add_letter(
        &self,
        user: &str,
        date: Day,
        text: &str,
        created_ms: i64,
    ) -> Result<i64, DbError> {
        let (user, day, text) = (user.to_owned(), date.to_string(), text.to_owned());
        self.write(move |tx| letters::insert(tx, &user, &day, &text, created_ms))
            .await
    }

    async fn letters(&self, user: &str, date: Day) -> Result<Vec<Letter>, DbError> {
        let (user, day) = (user.to_owned(), date.to_string());
        self.read(move |conn| letters::of_day(conn, &user, &day))
            .await
    }

    async fn report(&self, user: &str, date: Day) -> Result<Option<Report>, DbError> {
        let (user, day) = (user.to_owned(), date.to_string());
        self.read(move |conn| reports::of_day(conn, &user, &day))
            .await
    }

    async fn store_report(
        &self,
        user: &str,
        date: Day,
        answer: &AnalyzeResponse,
    ) -> Result<Option<Report>, DbError> {
        let (user, day, answer) = (user.to_owned(), date.to_string(), answer.clone());
        self.write(move |tx| insert_report(tx, &user, &day, &answer))
            .await
    }

    async fn reports_stored(&self, user: &str, date: Day) -> Result<(u64, u64), DbError> {
        let (user, day) = (user.to_owned(), date.to_string());
        self.read(move |conn| reports::count(conn, &user, &day))
            .await
    }

    async fn put_wallet(&self, id: &str, balance: i64) -> Result<bool, DbError> {
        let id = id.to_owned();
        self.write(move |tx| wallets::put(tx, &id, balance)).await
    }

    async fn wallet(&self, id: &str) -> Result<Option<Wallet>, DbError> {
        let id = id.to_owned();
        self.read(move |conn| wallets::of(conn, &id)).await
    }

    async fn purchase(
        &self,
        wallet: &str,
        item: &str,
        price: i64,
        created_ms: i64,
    ) -> Result<Result<Purchase, PurchaseRefused>, DbError> {
        let (wallet, item) = (wallet.to_owned(), item.to_owned());
        self.write(move |tx| wallets::purchase(tx, wallet, item, price, created_ms))
            .await
    }

    async fn purchases(&self, wallet: &str) -> Result<u64, DbError> {
        let wallet = wallet.to_owned();
        self.read(move |conn| wallets::purchases(conn, &wallet))
            .await
    }

    async fn save_questions(
        &self,
        key: &str,
        user: &str,
        role: &str,
        questions: &[String],
    ) -> Result<bool, DbError> {
        let (key, user, role) = (key.to_owned(), user.to_owned(), role.to_owned());
        let questions = questions.to_vec();
        let saved = self
            .store
            .call(move |c| questions::save(c, &key, &user, &role, &questions))
            .await;
        saved.map_err(|e| DbError::from_store(&e))
    }

    async fn saved_questions(&self, user: &str) -> Result<Vec<SavedQuestions>, DbError> {
        let user = user.to_owned();
        self.read(move |conn| questions::of_user(conn, &user)).await
    }

    async fn naive_report(
        &self,
        user: &str,
        date: Day,
        call: PaidCall<Vec<Letter>, AnalyzeResponse>,
    ) -> Result<NaiveReport, DbError> {
        naive::report(self, user, date, call).await
    }

    async fn naive_save(
        &self,
        user: &str,
        role: &str,
        call: PaidCall<(), (Vec<String>, bool)>,
    ) -> Result<NaiveSave, DbError> {
        naive::save(self, user, role, call).await
    }
}
