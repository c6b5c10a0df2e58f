//! The service's database — SQLite (one file, the default) or PostgreSQL (shared by every
//! instance) — behind one [`Repository`] interface.
//!
//! - `model.rs`: the domain records, the same on both;
//! - `repo.rs`: the [`Repository`] trait, one method per read or write;
//! - `sqlite/` and `postgres/`: its two implementations, one file per domain;
//! - `error.rs`: failures, classified, and lock errors counted per code path
//!   (`tollgate_demo_db_lock_errors_total{path}`);
//! - `url.rs`: the `--database` URL.
//!
//! The exactly-once records and the outbox live in the same database, so a report and the
//! completion of its claim (and a side effect and the write that caused it) commit together.

mod error;
mod model;
mod postgres;
mod repo;
mod sqlite;
mod url;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tollgate::store::StoreError;

pub use error::{CodePath, DbError, LockErrors, chain};
pub use model::{
    Letter, NaiveReport, NaiveSave, Purchase, PurchaseRefused, Report, SavedQuestions,
    StoredAnalysis, Wallet,
};
pub use postgres::{PgDb, insert_report as pg_insert_report};
pub use repo::{PaidCall, Repository};
pub use sqlite::{BUSY_TIMEOUT, SqliteDb, insert_report as sqlite_insert_report};
pub use url::{Database, DatabaseUrlError};

use crate::store::{ServiceOutbox, ServiceStore};
use crate::validate::Day;
use crate::wire::AnalyzeResponse;

/// The service's database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
    outbox: ServiceOutbox,
    lock_errors: Arc<LockErrors>,
}

/// The database a [`Db`] runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// One SQLite file.
    Sqlite(SqliteDb),
    /// A PostgreSQL database.
    Postgres(PgDb),
}

/// Runs `$e` with `$db` bound to the backend `$self` runs on.
macro_rules! each_db {
    ($self:expr, $db:ident => $e:expr) => {
        match &$self.backend {
            Backend::Sqlite($db) => $e,
            Backend::Postgres($db) => $e,
        }
    };
}

impl Db {
    /// Opens `database` (creating the SQLite file, or the PostgreSQL tables, if needed), with
    /// `pool_size` pooled connections.
    ///
    /// # Errors
    /// When the database cannot be reached or its tables not created; nothing is left
    /// half-created.
    pub async fn open(database: &Database, pool_size: usize) -> Result<Db, DbError> {
        let lock_errors = Arc::new(LockErrors::default());
        let backend = match database {
            Database::Sqlite(path) => {
                Backend::Sqlite(SqliteDb::open(path, pool_size, Arc::clone(&lock_errors)).await?)
            }
            Database::Postgres(config) => Backend::Postgres(
                PgDb::open((**config).clone(), pool_size, Arc::clone(&lock_errors)).await?,
            ),
        };
        let outbox = match &backend {
            Backend::Sqlite(db) => ServiceOutbox::Sqlite(db.outbox().clone()),
            Backend::Postgres(db) => ServiceOutbox::Postgres(db.outbox().clone()),
        };
        Ok(Db {
            backend,
            outbox,
            lock_errors,
        })
    }

    /// The database it runs on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The SQLite database, when it runs on one.
    pub fn sqlite(&self) -> Option<&SqliteDb> {
        match &self.backend {
            Backend::Sqlite(db) => Some(db),
            Backend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL database, when it runs on one.
    pub fn postgres(&self) -> Option<&PgDb> {
        match &self.backend {
            Backend::Postgres(db) => Some(db),
            Backend::Sqlite(_) => None,
        }
    }

    /// The exactly-once store in this database.
    pub fn store(&self) -> ServiceStore {
        match &self.backend {
            Backend::Sqlite(db) => ServiceStore::Sqlite(db.store().clone()),
            Backend::Postgres(db) => ServiceStore::Postgres(db.store().clone()),
        }
    }

    /// The durable outbox of side effects, in this database.
    pub fn outbox(&self) -> &ServiceOutbox {
        &self.outbox
    }

    /// Lock errors so far, per path.
    pub fn lock_errors(&self) -> &LockErrors {
        &self.lock_errors
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

    /// The store's current time in milliseconds since the Unix epoch (the outbox's ages are
    /// measured on it).
    pub fn now_ms(&self) -> u64 {
        match &self.backend {
            Backend::Sqlite(db) => db.store().now().0,
            Backend::Postgres(_) => now_ms().unsigned_abs(),
        }
    }
}

impl Repository for Db {
    async fn ping(&self) -> Result<(), DbError> {
        each_db!(self, db => db.ping().await)
    }

    async fn add_letter(
        &self,
        user: &str,
        date: Day,
        text: &str,
        created_ms: i64,
    ) -> Result<i64, DbError> {
        each_db!(self, db => db.add_letter(user, date, text, created_ms).await)
    }

    async fn letters(&self, user: &str, date: Day) -> Result<Vec<Letter>, DbError> {
        each_db!(self, db => db.letters(user, date).await)
    }

    async fn report(&self, user: &str, date: Day) -> Result<Option<Report>, DbError> {
        each_db!(self, db => db.report(user, date).await)
    }

    async fn store_report(
        &self,
        user: &str,
        date: Day,
        answer: &AnalyzeResponse,
    ) -> Result<Option<Report>, DbError> {
        each_db!(self, db => db.store_report(user, date, answer).await)
    }

    async fn reports_stored(&self, user: &str, date: Day) -> Result<(u64, u64), DbError> {
        each_db!(self, db => db.reports_stored(user, date).await)
    }

    async fn put_wallet(&self, id: &str, balance: i64) -> Result<bool, DbError> {
        each_db!(self, db => db.put_wallet(id, balance).await)
    }

    async fn wallet(&self, id: &str) -> Result<Option<Wallet>, DbError> {
        each_db!(self, db => db.wallet(id).await)
    }

    async fn purchase(
        &self,
        wallet: &str,
        item: &str,
        price: i64,
        created_ms: i64,
    ) -> Result<Result<Purchase, PurchaseRefused>, DbError> {
        each_db!(self, db => db.purchase(wallet, item, price, created_ms).await)
    }

    async fn purchases(&self, wallet: &str) -> Result<u64, DbError> {
        each_db!(self, db => db.purchases(wallet).await)
    }

    async fn save_questions(
        &self,
        key: &str,
        user: &str,
        role: &str,
        questions: &[String],
    ) -> Result<bool, DbError> {
        each_db!(self, db => db.save_questions(key, user, role, questions).await)
    }

    async fn saved_questions(&self, user: &str) -> Result<Vec<SavedQuestions>, DbError> {
        each_db!(self, db => db.saved_questions(user).await)
    }

    async fn naive_report(
        &self,
        user: &str,
        date: Day,
        call: PaidCall<Vec<Letter>, AnalyzeResponse>,
    ) -> Result<NaiveReport, DbError> {
        each_db!(self, db => db.naive_report(user, date, call).await)
    }

    async fn naive_save(
        &self,
        user: &str,
        role: &str,
        call: PaidCall<(), (Vec<String>, bool)>,
    ) -> Result<NaiveSave, DbError> {
        each_db!(self, db => db.naive_save(user, role, call).await)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Why an analysis could not be stored: it names a letter that is not one of the day's.
pub(crate) fn foreign_letter(letter: i64, user: &str, day: &str) -> String {
    format!("the analysis names letter {letter} which is not one of {user}'s on {day}")
}
