//! Redis's errors as [`StoreError`]s with a [`StoreErrorKind`] callers can match on.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};
use tollgate::store::{StoreError, StoreErrorKind};

/// The kind of a Redis failure: refused, dropped or unreachable connections → unavailable;
/// client timeouts → timed out; `BUSY`, `LOADING`, `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN` →
/// busy; replies that are not a record → corrupt; `READONLY`, `NOPERM`, `CROSSSLOT`, bad
/// configuration → rejected. (`NOSCRIPT` never reaches here: the script is loaded and run
/// again.)
pub fn kind(e: &RedisError) -> StoreErrorKind {
    if e.is_timeout() {
        return StoreErrorKind::TimedOut;
    }
    if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        return StoreErrorKind::Unavailable;
    }
    match e.kind() {
        ErrorKind::Server(server) => match server {
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown => StoreErrorKind::Busy,
            ServerErrorKind::ReadOnly | ServerErrorKind::NoPerm | ServerErrorKind::CrossSlot => {
                StoreErrorKind::Rejected
            }
            _ => StoreErrorKind::Other,
        },
        ErrorKind::Extension => match e.code() {
            Some("BUSY") => StoreErrorKind::Busy,
            Some("CORRUPT") => StoreErrorKind::Corrupt,
            Some("OOM" | "NOAUTH" | "WRONGPASS" | "MISCONF") => StoreErrorKind::Rejected,
            _ => StoreErrorKind::Other,
        },
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreErrorKind::Corrupt,
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig => {
            StoreErrorKind::Rejected
        }
        ErrorKind::ClusterConnectionNotFound => StoreErrorKind::Unavailable,
        _ => StoreErrorKind::Other,
    }
}

/// Wraps a Redis error with its kind.
pub fn store_error(e: RedisError) -> StoreError {
    StoreError::new(kind(&e), e)
}

/// An operation that got no answer within the store's timeout.
pub(crate) fn timed_out(what: &str, timeout: Duration) -> StoreError {
    StoreError::msg(
        StoreErrorKind::TimedOut,
        format!("redis: {what} got no answer within {timeout:?}"),
    )
}

/// A reply that is not what a script answers: the data (or the server) is not ours.
pub(crate) fn corrupt(what: impl fmt::Display) -> StoreError {
    StoreError::msg(StoreErrorKind::Corrupt, format!("redis: {what}"))
}

/// The server's persistence settings contradict the [`Durability`](crate::Durability) the
/// store was asked for: it refuses to start (a [`StoreErrorKind::Rejected`] [`StoreError`]
/// whose source is this error; downcast it to read the settings found).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurabilityRefused {
    /// The durability asked for.
    pub asked: crate::Durability,
    /// The server (`host:port`, empty for the one server of a non-cluster store).
    pub node: String,
    /// Its `appendonly` setting.
    pub appendonly: String,
    /// Its `appendfsync` setting.
    pub appendfsync: String,
}

impl fmt::Display for DurabilityRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = if self.node.is_empty() {
            String::new()
        } else {
            format!(" {}", self.node)
        };
        write!(
            f,
            "redis server{node} has appendonly {} and appendfsync {}, but durability {:?} needs {}: \
             a crash could lose acknowledged claims and completions (and run paid work twice); \
             configure the server, or ask for a weaker durability knowingly",
            self.appendonly,
            self.appendfsync,
            self.asked,
            self.asked.requirement()
        )
    }
}

impl StdError for DurabilityRefused {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_errors_map_onto_store_error_kinds() {
        let io = |k| RedisError::from(std::io::Error::from(k));
        assert_eq!(
            kind(&io(std::io::ErrorKind::ConnectionRefused)),
            StoreErrorKind::Unavailable
        );
        assert_eq!(
            kind(&io(std::io::ErrorKind::BrokenPipe)),
            StoreErrorKind::Unavailable
        );
        assert_eq!(
            kind(&io(std::io::ErrorKind::TimedOut)),
            StoreErrorKind::TimedOut
        );
        assert_eq!(
            timed_out("claim", Duration::from_secs(1)).kind(),
            StoreErrorKind::TimedOut
        );
        assert_eq!(corrupt("x").kind(), StoreErrorKind::Corrupt);
    }
}
