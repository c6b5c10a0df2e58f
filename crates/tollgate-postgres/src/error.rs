//! PostgreSQL's errors as [`StoreError`]s with a [`StoreErrorKind`] callers can match on.
//!
//! | failure | kind |
//! |---|---|
//! | connection refused, reset or closed; server shutting down (class 08, 57P01–57P03) | [`Unavailable`](StoreErrorKind::Unavailable) |
//! | a call past its timeout; `statement_timeout` (57014) | [`TimedOut`](StoreErrorKind::TimedOut) |
//! | serialization failure 40001, deadlock 40P01, `lock_not_available` 55P03; the pool exhausted past its wait | [`Busy`](StoreErrorKind::Busy) |
//! | a value that cannot be decoded (a damaged row) | [`Corrupt`](StoreErrorKind::Corrupt) |
//! | syntax or access rule violations (class 42, permission 42501), read-only (25006), bad configuration | [`Rejected`](StoreErrorKind::Rejected) |

use std::time::Duration;

use deadpool_postgres::{PoolError, TimeoutType};
use tokio_postgres::error::SqlState;
use tollgate::store::{StoreError, StoreErrorKind};

/// The kind of a driver failure.
pub fn kind(e: &tokio_postgres::Error) -> StoreErrorKind {
    if let Some(code) = e.code() {
        return sqlstate_kind(code);
    }
    if e.is_closed() {
        return StoreErrorKind::Unavailable;
    }
    let source = std::error::Error::source(e);
    if source.is_some_and(|s| s.is::<std::io::Error>()) {
        return StoreErrorKind::Unavailable;
    }
    // The driver keeps its error kinds private; its messages are stable.
    let text = e.to_string();
    if text.starts_with("error deserializing") {
        StoreErrorKind::Corrupt
    } else if text.starts_with("error connecting") || text.starts_with("timeout waiting") {
        StoreErrorKind::Unavailable
    } else {
        StoreErrorKind::Other
    }
}

fn sqlstate_kind(code: &SqlState) -> StoreErrorKind {
    let class = &code.code()[..2];
    if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
    {
        StoreErrorKind::Busy
    } else if *code == SqlState::QUERY_CANCELED {
        StoreErrorKind::TimedOut
    } else if class == "08"
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
    {
        StoreErrorKind::Unavailable
    } else if class == "42"
        || class == "28"
        || class == "3D"
        || class == "3F"
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        || *code == SqlState::INSUFFICIENT_PRIVILEGE
    {
        StoreErrorKind::Rejected
    } else if class == "22" || class == "XX" {
        StoreErrorKind::Corrupt
    } else {
        StoreErrorKind::Other
    }
}

/// Wraps a driver error with its kind.
pub fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::new(kind(&e), e)
}

/// Wraps a pool error: a wait past the pool's timeout is [`StoreErrorKind::Busy`] (every
/// connection is in use), a failed connect is the connect error's kind.
pub fn pool(e: PoolError) -> StoreError {
    let kind = match &e {
        PoolError::Backend(e) => kind(e),
        PoolError::Timeout(TimeoutType::Wait) => StoreErrorKind::Busy,
        PoolError::Timeout(_) => StoreErrorKind::TimedOut,
        PoolError::Closed => StoreErrorKind::Unavailable,
        PoolError::NoRuntimeSpecified => StoreErrorKind::Rejected,
        PoolError::PostCreateHook(_) => StoreErrorKind::Other,
    };
    let message = match &e {
        PoolError::Timeout(TimeoutType::Wait) => {
            "every connection of the pool is in use: gave up waiting for one".to_owned()
        }
        other => other.to_string(),
    };
    StoreError::new(kind, Wrapped { message, source: e })
}

/// A call that did not finish within the store's timeout.
pub fn timed_out(what: &str, after: Duration) -> StoreError {
    StoreError::msg(
        StoreErrorKind::TimedOut,
        format!("postgres did not answer {what} within {after:?}"),
    )
}

/// A row the store cannot read back as a record.
pub fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::msg(StoreErrorKind::Corrupt, what)
}

#[derive(Debug)]
struct Wrapped {
    message: String,
    source: PoolError,
}

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_onto_store_error_kinds() {
        let cases = [
            (SqlState::T_R_SERIALIZATION_FAILURE, StoreErrorKind::Busy),
            (SqlState::T_R_DEADLOCK_DETECTED, StoreErrorKind::Busy),
            (SqlState::LOCK_NOT_AVAILABLE, StoreErrorKind::Busy),
            (SqlState::QUERY_CANCELED, StoreErrorKind::TimedOut),
            (SqlState::CONNECTION_FAILURE, StoreErrorKind::Unavailable),
            (SqlState::ADMIN_SHUTDOWN, StoreErrorKind::Unavailable),
            (SqlState::UNDEFINED_TABLE, StoreErrorKind::Rejected),
            (SqlState::INSUFFICIENT_PRIVILEGE, StoreErrorKind::Rejected),
            (
                SqlState::READ_ONLY_SQL_TRANSACTION,
                StoreErrorKind::Rejected,
            ),
            (SqlState::DATA_CORRUPTED, StoreErrorKind::Corrupt),
            (SqlState::UNIQUE_VIOLATION, StoreErrorKind::Other),
        ];
        for (code, expected) in cases {
            assert_eq!(sqlstate_kind(&code), expected, "{}", code.code());
        }
        let waited = pool(PoolError::Timeout(TimeoutType::Wait));
        assert_eq!(waited.kind(), StoreErrorKind::Busy);
        assert!(
            waited
                .to_string()
                .contains("every connection of the pool is in use")
        );
        assert_eq!(pool(PoolError::Closed).kind(), StoreErrorKind::Unavailable);
    }
}
