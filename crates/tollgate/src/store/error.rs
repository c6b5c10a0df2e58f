//! [`StoreError`]: a backend failed, with a typed [`StoreErrorKind`] to match on.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// What kind of failure a store reported, in terms every backend maps onto.
///
/// Match on this rather than on the backend's error or its message: the SQLite store reports
/// `SQLITE_BUSY` as [`Busy`](StoreErrorKind::Busy), a PostgreSQL store a lock timeout the
/// same way, and a closed connection to either as [`Unavailable`](StoreErrorKind::Unavailable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The backend cannot be reached or is shutting down (connection refused or closed, the
    /// connection thread stopped). Retrying later may work; answer 503.
    Unavailable,
    /// The backend did not answer in time. The operation may or may not have taken effect.
    TimedOut,
    /// The backend is busy with other writers (a lock held too long, a serialization
    /// failure). Retrying soon may work.
    Busy,
    /// Stored data could not be read back as a record (a damaged row, an unknown state).
    Corrupt,
    /// The backend refused the operation for a reason retrying will not fix: a read-only
    /// database, a missing table, a permission, a bad configuration.
    Rejected,
    /// Anything else.
    Other,
}

impl StoreErrorKind {
    /// A stable lowercase name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::TimedOut => "timed_out",
            StoreErrorKind::Busy => "busy",
            StoreErrorKind::Corrupt => "corrupt",
            StoreErrorKind::Rejected => "rejected",
            StoreErrorKind::Other => "other",
        }
    }

    /// Whether trying the same operation again later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            StoreErrorKind::Unavailable | StoreErrorKind::TimedOut | StoreErrorKind::Busy
        )
    }
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend failed (I/O, a corrupt row, a closed connection). The operation may or may not
/// have taken effect when the failure came after the request was sent.
///
/// Cheap to clone (the backend's error is shared), so one failure can reach every caller that
/// shared an execution. The backend's own error stays available as [`source`](StdError::source).
#[derive(Clone)]
pub struct StoreError {
    kind: StoreErrorKind,
    source: Arc<dyn StdError + Send + Sync>,
}

impl StoreError {
    /// Wraps a backend's error as a failure of `kind`.
    pub fn new(kind: StoreErrorKind, error: impl StdError + Send + Sync + 'static) -> Self {
        StoreError {
            kind,
            source: Arc::new(error),
        }
    }

    /// A failure of `kind` described by a message.
    pub fn msg(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError::new(kind, Message(message.into()))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store failed ({}): {}", self.kind, self.source)
    }
}

/// Two store errors are equal when their kinds and messages are (errors carry no identity of
/// their own).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && (Arc::ptr_eq(&self.source, &other.source)
                || self.source.to_string() == other.source.to_string())
    }
}

impl Eq for StoreError {}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_message_survive_cloning_and_display() {
        let e = StoreError::msg(StoreErrorKind::Busy, "database is locked");
        assert_eq!(e.clone().kind(), StoreErrorKind::Busy);
        assert_eq!(e.to_string(), "store failed (busy): database is locked");
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("database is locked")
        );
        assert!(e.kind().is_transient());
        assert!(!StoreErrorKind::Corrupt.is_transient());
        assert_ne!(
            e,
            StoreError::msg(StoreErrorKind::Other, "database is locked")
        );
    }
}
