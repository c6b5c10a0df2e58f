//! Database failures, classified, and lock errors counted per code path.

use std::sync::atomic::{AtomicU64, Ordering};

use tollgate::store::{StoreError, StoreErrorKind};
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

    pub(super) fn add(&self, path: CodePath) {
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
    pub(super) fn from_store(e: &StoreError) -> DbError {
        match e.kind() {
            StoreErrorKind::Busy => DbError::Locked(e.to_string()),
            _ => DbError::Other(e.to_string()),
        }
    }
}
