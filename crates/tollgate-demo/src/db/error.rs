//! Database failures, classified, and lock errors counted per code path.

use std::sync::atomic::{AtomicU64, Ordering};

use tollgate::store::{StoreError, StoreErrorKind};
use tollgate_postgres::tokio_postgres;
use tollgate_sqlite::rusqlite::{self, ErrorCode};

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

    pub(crate) fn add(&self, path: CodePath) {
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

    /// Classifies a PostgreSQL error: a serialization failure, a deadlock or a lock that was
    /// not available is a lock error.
    pub fn from_postgres(e: &tokio_postgres::Error) -> DbError {
        use tokio_postgres::error::SqlState;
        let locked = [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
        ];
        match e.code() {
            Some(code) if locked.contains(code) => DbError::Locked(chain(e)),
            _ => DbError::Other(chain(e)),
        }
    }

    /// No connection could be had from a pool.
    pub(super) fn pool(e: impl std::error::Error) -> DbError {
        DbError::Other(format!("no database connection: {}", chain(&e)))
    }

    /// Classifies a store failure by its kind: busy is a lock error.
    pub(super) fn from_store(e: &StoreError) -> DbError {
        match e.kind() {
            StoreErrorKind::Busy => DbError::Locked(e.to_string()),
            _ => DbError::Other(e.to_string()),
        }
    }
}

/// `e` and its causes, joined by `: ` (a driver's top-level message alone often hides the
/// reason, such as "connection refused" or "password authentication failed").
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
