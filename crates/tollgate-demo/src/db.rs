//! The service's SQLite database: letters, reports and their analyses, wallets.
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tollgate::store::{StoreError, StoreErrorKind};
use tollgate_sqlite::SqliteStore;
use tollgate_sqlite::rusqlite::{
    self, Connection, ErrorCode, OptionalExtension, TransactionBehavior, params,
};

use crate::validate::Day;
use crate::wire::AnalyzeResponse;

/// How long a connection waits for another's write lock before it reports `busy`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS letters (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    day        TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS letters_by_day ON letters (user_id, day);
CREATE TABLE IF NOT EXISTS reports (
    id           INTEGER PRIMARY KEY,
    user_id      TEXT NOT NULL,
    day          TEXT NOT NULL,
    summary      TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    UNIQUE (user_id, day)
);
CREATE TABLE IF NOT EXISTS analyses (
    id        INTEGER PRIMARY KEY,
    report_id INTEGER NOT NULL REFERENCES reports (id),
    letter_id INTEGER NOT NULL REFERENCES letters (id),
    mood      TEXT NOT NULL,
    summary   TEXT NOT NULL,
    UNIQUE (report_id, letter_id)
);
-- The original schema of S3, used by the naive path only: nothing stops a second report.
CREATE TABLE IF NOT EXISTS naive_reports (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    day        TEXT NOT NULL,
    summary    TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS naive_reports_by_day ON naive_reports (user_id, day);
CREATE TABLE IF NOT EXISTS naive_analyses (
    id        INTEGER PRIMARY KEY,
    report_id INTEGER NOT NULL REFERENCES naive_reports (id),
    letter_id INTEGER NOT NULL REFERENCES letters (id),
    mood      TEXT NOT NULL,
    summary   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS wallets (
    id      TEXT PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0)
);
CREATE TABLE IF NOT EXISTS purchases (
    id         INTEGER PRIMARY KEY,
    wallet_id  TEXT NOT NULL REFERENCES wallets (id),
    item       TEXT NOT NULL,
    price      INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
";

/// Which code path met a database error: the guarded endpoints or the naive one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePath {
    /// Every endpoint but `/naive/…`.
    Guarded,
    /// `/naive/…`.
    Naive,
}

impl CodePath {
    fn label(self) -> &'static str {
        match self {
            CodePath::Guarded => "guarded",
            CodePath::Naive => "naive",
        }
    }
}

/// Lock errors (busy, locked) reported by the database, per code path.
#[derive(Debug, Default)]
pub struct LockErrors {
    guarded: AtomicU64,
    naive: AtomicU64,
}

impl LockErrors {
    /// The count for `path`.
    pub fn get(&self, path: CodePath) -> u64 {
        match path {
            CodePath::Guarded => self.guarded.load(Ordering::SeqCst),
            CodePath::Naive => self.naive.load(Ordering::SeqCst),
        }
    }

    fn add(&self, path: CodePath) {
        let counter = match path {
            CodePath::Guarded => &self.guarded,
            CodePath::Naive => &self.naive,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("tollgate_demo_db_lock_errors_total", "path" => path.label())
            .increment(1);
    }
}

/// A database failure, classified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// The database reported a lock conflict: `SQLITE_BUSY` (including a transaction whose
    /// read snapshot went stale before it could write) or `SQLITE_LOCKED`.
    #[error("database locked: {0}")]
    Locked(String),
    /// Any other failure.
    #[error("database error: {0}")]
    Other(String),
}

impl DbError {
    /// Classifies a driver error.
    pub fn from_sqlite(e: &rusqlite::Error) -> DbError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                DbError::Locked(e.to_string())
            }
            _ => DbError::Other(e.to_string()),
        }
    }

    /// Classifies a store failure by its kind: busy is a lock error.
    fn from_store(e: &StoreError) -> DbError {
        match e.kind() {
            StoreErrorKind::Busy => DbError::Locked(e.to_string()),
            _ => DbError::Other(e.to_string()),
        }
    }
}

/// A stored letter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Letter {
    /// Its id.
    pub id: i64,
    /// Its author.
    pub user: String,
    /// The day it belongs to.
    pub date: Day,
    /// Its text.
    pub text: String,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A stored analysis of one letter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StoredAnalysis {
    /// The letter.
    pub letter_id: i64,
    /// Its mood.
    pub mood: String,
    /// Its summary.
    pub summary: String,
}

/// A stored daily report with the analyses of its letters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Report {
    /// The report's id.
    pub id: i64,
    /// Whose day.
    pub user: String,
    /// Which day.
    pub date: Day,
    /// The LLM's summary of the day.
    pub summary: String,
    /// One analysis per letter.
    pub analyses: Vec<StoredAnalysis>,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Wallet {
    /// Its id.
    pub id: String,
    /// Its balance.
    pub balance: i64,
}

/// A completed purchase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Purchase {
    /// The purchase's id.
    pub id: i64,
    /// The wallet charged.
    pub wallet: String,
    /// What was bought.
    pub item: String,
    /// Its price.
    pub price: i64,
    /// The wallet's balance after the purchase.
    pub balance: i64,
}

/// Why a purchase did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurchaseRefused {
    /// No such wallet.
    NoWallet,
    /// The balance is lower than the price.
    InsufficientFunds {
        /// The balance.
        balance: i64,
    },
}

/// The service's database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    path: PathBuf,
    store: SqliteStore,
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
        Ok(Db {
            pool: Pool::new(path.clone(), pool_size.max(1)),
            path,
            store,
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
    async fn read<R, F>(&self, f: F) -> Result<R, DbError>
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

    /// Stores a letter.
    ///
    /// # Errors
    /// A database failure.
    pub async fn add_letter(
        &self,
        user: String,
        date: Day,
        text: String,
    ) -> Result<Letter, DbError> {
        let created_ms = now_ms();
        let day = date.to_string();
        let (u, t) = (user.clone(), text.clone());
        let id = self
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO letters (user_id, day, body, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![u, day, t, created_ms],
                )?;
                Ok(tx.last_insert_rowid())
            })
            .await?;
        Ok(Letter {
            id,
            user,
            date,
            text,
            created_ms,
        })
    }

    /// The letters of one user's day, oldest first.
    ///
    /// # Errors
    /// A database failure.
    pub async fn letters(&self, user: &str, date: Day) -> Result<Vec<Letter>, DbError> {
        let (user, day) = (user.to_owned(), date.to_string());
        self.read(move |conn| letters_of(conn, &user, &day)).await
    }

    /// The report of one user's day, if stored.
    ///
    /// # Errors
    /// A database failure.
    pub async fn report(&self, user: &str, date: Day) -> Result<Option<Report>, DbError> {
        let (user, day) = (user.to_owned(), date.to_string());
        self.read(move |conn| report_of(conn, &user, &day)).await
    }

    /// Stores the report of one user's day and one analysis per letter, in one transaction.
    /// Returns `None` when a report for that day exists already (nothing is written).
    ///
    /// # Errors
    /// A database failure, or an analysis naming a letter that is not one of that day's.
    pub async fn store_report(
        &self,
        user: &str,
        date: Day,
        answer: AnalyzeResponse,
    ) -> Result<Option<Report>, DbError> {
        let (user, day) = (user.to_owned(), date.to_string());
        self.write(move |tx| insert_report(tx, &user, &day, &answer))
            .await
    }

    /// How many reports are stored for one user's day by the guarded path (at most 1) and by
    /// the naive path (any number).
    ///
    /// # Errors
    /// A database failure.
    pub async fn reports_stored(&self, user: &str, date: Day) -> Result<(u64, u64), DbError> {
        let (user, day) = (user.to_owned(), date.to_string());
        self.read(move |conn| {
            let count = |table: &str| -> rusqlite::Result<u64> {
                conn.query_row(
                    &format!("SELECT count(*) FROM {table} WHERE user_id = ?1 AND day = ?2"),
                    params![user, day],
                    |row| row.get(0),
                )
            };
            Ok((count("reports")?, count("naive_reports")?))
        })
        .await
    }

    /// Creates the wallet or sets its balance; `true` when it was created.
    ///
    /// # Errors
    /// A database failure.
    pub async fn put_wallet(&self, id: String, balance: i64) -> Result<bool, DbError> {
        self.write(move |tx| {
            let existed = tx
                .query_row("SELECT 1 FROM wallets WHERE id = ?1", [&id], |_| Ok(()))
                .optional()?
                .is_some();
            tx.execute(
                "INSERT INTO wallets (id, balance) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET balance = excluded.balance",
                params![id, balance],
            )?;
            Ok(!existed)
        })
        .await
    }

    /// The wallet, if it exists.
    ///
    /// # Errors
    /// A database failure.
    pub async fn wallet(&self, id: &str) -> Result<Option<Wallet>, DbError> {
        let id = id.to_owned();
        self.read(move |conn| wallet_of(conn, &id)).await
    }

    /// Buys `item` for `price` from the wallet: one atomic conditional update (`balance =
    /// balance - price WHERE balance >= price`) and the purchase row, in one transaction. No
    /// read-then-write, so concurrent purchases can never overspend (S2).
    ///
    /// # Errors
    /// A database failure.
    pub async fn purchase(
        &self,
        wallet: String,
        item: String,
        price: i64,
    ) -> Result<Result<Purchase, PurchaseRefused>, DbError> {
        let created_ms = now_ms();
        self.write(move |tx| {
            let charged = tx.execute(
                "UPDATE wallets SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1",
                params![price, wallet],
            )?;
            if charged == 0 {
                return Ok(Err(match wallet_of(tx, &wallet)? {
                    None => PurchaseRefused::NoWallet,
                    Some(w) => PurchaseRefused::InsufficientFunds { balance: w.balance },
                }));
            }
            tx.execute(
                "INSERT INTO purchases (wallet_id, item, price, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![wallet, item, price, created_ms],
            )?;
            let id = tx.last_insert_rowid();
            let balance = wallet_of(tx, &wallet)?.map_or(0, |w| w.balance);
            Ok(Ok(Purchase { id, wallet, item, price, balance }))
        })
        .await
    }

    /// How many purchases the wallet has.
    ///
    /// # Errors
    /// A database failure.
    pub async fn purchases(&self, wallet: &str) -> Result<u64, DbError> {
        let wallet = wallet.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM purchases WHERE wallet_id = ?1",
                [wallet],
                |row| row.get(0),
            )
        })
        .await
    }
}

/// Inserts the report of one user's day and one analysis per letter; `None` when a report for
/// that day exists already (nothing is written). Run inside the caller's transaction.
///
/// # Errors
/// A database failure, or an analysis naming a letter that is not one of that day's.
pub fn insert_report(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    day: &str,
    answer: &AnalyzeResponse,
) -> rusqlite::Result<Option<Report>> {
    if report_of(tx, user, day)?.is_some() {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO reports (user_id, day, summary, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![user, day, answer.summary, now_ms()],
    )?;
    let report_id = tx.last_insert_rowid();
    let mut insert = tx.prepare(
        "INSERT INTO analyses (report_id, letter_id, mood, summary)
         SELECT ?1, id, ?3, ?4 FROM letters WHERE id = ?2 AND user_id = ?5 AND day = ?6",
    )?;
    for a in &answer.analyses {
        let params = params![report_id, a.letter_id, a.mood, a.summary, user, day];
        if insert.execute(params)? != 1 {
            let message = format!(
                "the analysis names letter {} which is not one of {user}'s on {day}",
                a.letter_id
            );
            return Err(rusqlite::Error::ToSqlConversionFailure(message.into()));
        }
    }
    drop(insert);
    report_of(tx, user, day)
}

/// The letters of a day, oldest first.
pub fn letters_of(conn: &Connection, user: &str, day: &str) -> rusqlite::Result<Vec<Letter>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body, created_ms, day FROM letters WHERE user_id = ?1 AND day = ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![user, day], |row| {
        let day: String = row.get(3)?;
        let date = Day::parse(&day).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?;
        Ok(Letter {
            id: row.get(0)?,
            user: user.to_owned(),
            date,
            text: row.get(1)?,
            created_ms: row.get(2)?,
        })
    })?;
    rows.collect()
}

fn report_of(conn: &Connection, user: &str, day: &str) -> rusqlite::Result<Option<Report>> {
    let head = conn
        .query_row(
            "SELECT id, summary, created_ms FROM reports WHERE user_id = ?1 AND day = ?2",
            params![user, day],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((id, summary, created_ms)) = head else {
        return Ok(None);
    };
    let date = Day::parse(day).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let mut stmt = conn.prepare_cached(
        "SELECT letter_id, mood, summary FROM analyses WHERE report_id = ?1 ORDER BY letter_id",
    )?;
    let analyses = stmt
        .query_map([id], |row| {
            Ok(StoredAnalysis {
                letter_id: row.get(0)?,
                mood: row.get(1)?,
                summary: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(Report {
        id,
        user: user.to_owned(),
        date,
        summary,
        analyses,
        created_ms,
    }))
}

fn wallet_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<Wallet>> {
    conn.query_row(
        "SELECT id, balance FROM wallets WHERE id = ?1",
        [id],
        |row| {
            Ok(Wallet {
                id: row.get(0)?,
                balance: row.get(1)?,
            })
        },
    )
    .optional()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fixed-size pool of SQLite connections to one file. A connection is opened when first
/// needed; one that comes back inside a transaction (its user was cancelled) is closed, which
/// rolls the transaction back, and replaced by a fresh one later.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    path: PathBuf,
    idle: std::sync::Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    fn new(path: PathBuf, size: usize) -> Pool {
        Pool {
            inner: Arc::new(PoolInner {
                path,
                idle: std::sync::Mutex::new(Vec::with_capacity(size)),
                permits: Arc::new(Semaphore::new(size)),
            }),
        }
    }

    /// Waits for a free connection.
    ///
    /// # Errors
    /// When a new connection cannot be opened.
    pub async fn get(&self) -> Result<PooledConn, DbError> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| DbError::Other("the pool is closed".into()))?;
        let idle = self.inner.idle.lock().map_or(None, |mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let path = self.inner.path.clone();
                tokio::task::spawn_blocking(move || open_pooled(&path))
                    .await
                    .map_err(|e| DbError::Other(e.to_string()))?
                    .map_err(|e| DbError::from_sqlite(&e))?
            }
        };
        Ok(PooledConn {
            conn: Some(conn),
            pool: Arc::clone(&self.inner),
            _permit: permit,
        })
    }
}

fn open_pooled(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// A connection taken from the [`Pool`]; given back when dropped.
#[derive(Debug)]
pub struct PooledConn {
    conn: Option<Connection>,
    pool: Arc<PoolInner>,
    _permit: OwnedSemaphorePermit,
}

impl PooledConn {
    /// Runs `f` on this connection on a blocking thread (never on the runtime's workers). The
    /// outer error is a lost connection; the inner one is SQLite's.
    ///
    /// # Errors
    /// [`DbError::Other`] when the connection was lost (a previous call panicked).
    pub async fn run<R, F>(&mut self, f: F) -> Result<rusqlite::Result<R>, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let conn = self
            .conn
            .take()
            .ok_or_else(|| DbError::Other("the pooled connection was lost".into()))?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&conn);
            (conn, result)
        })
        .await
        .map_err(|e| DbError::Other(e.to_string()))?;
        self.conn = Some(conn);
        Ok(result)
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if conn.is_autocommit() {
            if let Ok(mut idle) = self.pool.idle.lock() {
                idle.push(conn);
            }
        }
        // Otherwise the connection is dropped here, which rolls back its transaction.
    }
}
