//! The service's tables on PostgreSQL (schema `tollgate_demo`), shared by every instance of
//! the service: one file per domain (`letters.rs`, `reports.rs`, `wallets.rs`,
//! `questions.rs`), the tables (`schema.rs`) and the naive paths (`naive.rs`).
//!
//! One `deadpool-postgres` pool serves everything — the domain tables, the exactly-once
//! records ([`PostgresStore`], schema `tollgate`) and the outbox ([`PgOutbox`]) — so a report
//! and the completion of its claim commit in one transaction. Every call is bounded by
//! [`TIMEOUT`]: a paused or unreachable server is an error, never a hung request.

mod letters;
mod naive;
mod questions;
mod reports;
mod schema;
mod wallets;

use std::sync::Arc;
use std::time::Duration;

use tollgate_postgres::deadpool_postgres::{Object, Pool};
use tollgate_postgres::tokio_postgres::{self, Config};
use tollgate_postgres::{PgOutbox, PostgresStore};

pub use reports::insert_report;

use super::error::{CodePath, DbError, LockErrors, chain};
use super::model::{
    Letter, NaiveReport, NaiveSave, Purchase, PurchaseRefused, Report, SavedQuestions, Wallet,
};
use super::repo::{PaidCall, Repository};
use crate::validate::Day;
use crate::wire::AnalyzeResponse;

/// How long one database call (or the wait for a pooled connection) may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// The service's tables in one PostgreSQL database; cheap to clone.
#[derive(Clone, Debug)]
pub struct PgDb {
    pool: Pool,
    store: PostgresStore,
    outbox: PgOutbox,
    lock_errors: Arc<LockErrors>,
}

impl PgDb {
    /// Connects with `config` (a pool of `pool_size`), checks that the server answers, then
    /// applies the store's migrations and the service's tables.
    pub(super) async fn open(
        config: Config,
        pool_size: usize,
        lock_errors: Arc<LockErrors>,
    ) -> Result<PgDb, DbError> {
        let pool = tollgate_postgres::pool(config.clone(), pool_size.max(1), TIMEOUT)
            .map_err(|e| DbError::Other(chain(&e)))?;
        // Reach the server before anything is created: a bad address or credentials fail
        // here, with the driver's reason.
        drop(pool.get().await.map_err(DbError::pool)?);
        let store = PostgresStore::builder(pool.clone())
            .listen(config)
            .open()
            .await
            .map_err(|e| DbError::Other(chain(&e)))?;
        let outbox = PgOutbox::new(&store);
        let db = PgDb {
            pool,
            store,
            outbox,
            lock_errors,
        };
        db.bounded(db.migrate()).await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(&e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::LOCK])
            .await
            .map_err(|e| self.pg(&e))?;
        tx.batch_execute(schema::SCHEMA)
            .await
            .map_err(|e| self.pg(&e))?;
        tx.commit().await.map_err(|e| self.pg(&e))
    }

    /// The exactly-once store sharing this database (and pool).
    pub fn store(&self) -> &PostgresStore {
        &self.store
    }

    /// The durable outbox of side effects, in this database.
    pub fn outbox(&self) -> &PgOutbox {
        &self.outbox
    }

    /// The pool shared by the tables, the store and the outbox.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn client(&self) -> Result<Object, DbError> {
        self.pool.get().await.map_err(DbError::pool)
    }

    /// Classifies a driver error of the guarded paths, counting lock errors.
    fn pg(&self, e: &tokio_postgres::Error) -> DbError {
        self.classified(CodePath::Guarded, e)
    }

    fn classified(&self, path: CodePath, e: &tokio_postgres::Error) -> DbError {
        let error = DbError::from_postgres(e);
        if matches!(error, DbError::Locked(_)) {
            self.lock_errors.add(path);
        }
        error
    }

    /// Runs `f` within [`TIMEOUT`].
    async fn bounded<R>(&self, f: impl Future<Output = Result<R, DbError>>) -> Result<R, DbError> {
        match tokio::time::timeout(TIMEOUT, f).await {
            Ok(done) => done,
            Err(_) => Err(DbError::Other(format!(
                "the database did not answer within {TIMEOUT:?}"
            ))),
        }
    }

    /// One statement's rows, on a pooled connection, within [`TIMEOUT`].
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, DbError> {
        self.bounded(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(|e| self.pg(&e))?;
            client
                .query(&statement, params)
                .await
                .map_err(|e| self.pg(&e))
        })
        .await
    }
}

impl Repository for PgDb {
    async fn ping(&self) -> Result<(), DbError> {
        self.query("SELECT 1", &[]).await.map(drop)
    }

    async fn add_letter(
        &self,
        user: &str,
        date: Day,
        text: &str,
        created_ms: i64,
    ) -> Result<i64, DbError> {
        letters::insert(self, user, &date.to_string(), text, created_ms).await
    }

    async fn letters(&self, user: &str, date: Day) -> Result<Vec<Letter>, DbError> {
        letters::of_day(self, user, date).await
    }

    async fn report(&self, user: &str, date: Day) -> Result<Option<Report>, DbError> {
        reports::of_day(self, user, date).await
    }

    async fn store_report(
        &self,
        user: &str,
        date: Day,
        answer: &AnalyzeResponse,
    ) -> Result<Option<Report>, DbError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| self.pg(&e))?;
            let day = date.to_string();
            let stored = insert_report(&tx, user, &day, answer)
                .await
                .map_err(|e| self.pg(&e))?;
            match stored {
                Ok(report) => {
                    tx.commit().await.map_err(|e| self.pg(&e))?;
                    Ok(report)
                }
                // Dropping the transaction rolls it back.
                Err(foreign) => Err(DbError::Other(foreign)),
            }
        })
        .await
    }

    async fn reports_stored(&self, user: &str, date: Day) -> Result<(u64, u64), DbError> {
        reports::count(self, user, &date.to_string()).await
    }

    async fn put_wallet(&self, id: &str, balance: i64) -> Result<bool, DbError> {
        wallets::put(self, id, balance).await
    }

    async fn wallet(&self, id: &str) -> Result<Option<Wallet>, DbError> {
        wallets::of(self, id).await
    }

    async fn purchase(
        &self,
        wallet: &str,
        item: &str,
        price: i64,
        created_ms: i64,
    ) -> Result<Result<Purchase, PurchaseRefused>, DbError> {
        wallets::purchase(self, wallet, item, price, created_ms).await
    }

    async fn purchases(&self, wallet: &str) -> Result<u64, DbError> {
        wallets::purchases(self, wallet).await
    }

    async fn save_questions(
        &self,
        key: &str,
        user: &str,
        role: &str,
        questions: &[String],
    ) -> Result<bool, DbError> {
        questions::save(self, key, user, role, questions).await
    }

    async fn saved_questions(&self, user: &str) -> Result<Vec<SavedQuestions>, DbError> {
        questions::of_user(self, user).await
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
