//! SQLite's errors as [`StoreError`]s with a [`StoreErrorKind`] callers can match on.

use rusqlite::ErrorCode;
use tollgate::store::{StoreError, StoreErrorKind};

/// The kind of an SQLite failure: `SQLITE_BUSY`/`LOCKED` → busy, I/O and open failures →
/// unavailable, damaged files and undecodable rows → corrupt, read-only, permission and schema
/// refusals → rejected.
pub fn kind(e: &rusqlite::Error) -> StoreErrorKind {
    match e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreErrorKind::Busy,
            ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed => StoreErrorKind::Unavailable,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreErrorKind::Corrupt,
            ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::AuthorizationForStatementDenied
            | ErrorCode::SchemaChanged
            | ErrorCode::ConstraintViolation
            | ErrorCode::TooBig
            | ErrorCode::TypeMismatch
            | ErrorCode::ApiMisuse => StoreErrorKind::Rejected,
            _ => StoreErrorKind::Other,
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(..) => StoreErrorKind::Corrupt,
        rusqlite::Error::SqlInputError { .. } | rusqlite::Error::InvalidQuery => {
            StoreErrorKind::Rejected
        }
        _ => StoreErrorKind::Other,
    }
}

/// Wraps an SQLite error with its kind.
pub fn store_error(e: rusqlite::Error) -> StoreError {
    StoreError::new(kind(&e), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn sqlite_codes_map_onto_store_error_kinds() {
        let cases = [
            (rusqlite::ffi::SQLITE_BUSY, StoreErrorKind::Busy),
            (rusqlite::ffi::SQLITE_LOCKED, StoreErrorKind::Busy),
            (rusqlite::ffi::SQLITE_IOERR, StoreErrorKind::Unavailable),
            (rusqlite::ffi::SQLITE_CANTOPEN, StoreErrorKind::Unavailable),
            (rusqlite::ffi::SQLITE_CORRUPT, StoreErrorKind::Corrupt),
            (rusqlite::ffi::SQLITE_READONLY, StoreErrorKind::Rejected),
        ];
        for (code, expected) in cases {
            assert_eq!(store_error(failure(code)).kind(), expected, "code {code}");
        }
        let bad_row =
            rusqlite::Error::InvalidColumnType(0, "x".into(), rusqlite::types::Type::Null);
        assert_eq!(kind(&bad_row), StoreErrorKind::Corrupt);
    }
}
