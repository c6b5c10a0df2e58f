//! Errors: [`RaceError`] ends a run, [`ErrorKind`] classifies one failed request.

use std::io;

use serde::Serialize;

/// Why a run could not produce a report.
///
/// A run that reaches the target always produces a [`Report`](crate::Report), even when some
/// requests fail (those are counted by [`ErrorKind`]); these errors mean the run itself was
/// misconfigured or the target was unreachable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaceError {
    /// The configuration is unusable (zero requests, a malformed header, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The URL could not be parsed or uses an unsupported scheme.
    #[error("invalid URL `{url}`: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host name did not resolve to any address.
    #[error("could not resolve `{host}`: {source}")]
    Resolve {
        /// The host that failed to resolve.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// Not a single request of a trial could open a connection (TCP or TLS).
    #[error("could not reach {target}: {message}")]
    Unreachable {
        /// `host:port` of the target.
        target: String,
        /// Whether TCP connect or the TLS handshake failed.
        kind: ErrorKind,
        /// The first failure, with a hint when one helps.
        message: String,
    },
    /// The TLS client could not be configured.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// The kind of failure of one request, as counted in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The TCP connection could not be opened.
    Connect,
    /// The TLS handshake failed (for example an untrusted certificate).
    Tls,
    /// No complete response within the per-request timeout.
    Timeout,
    /// The peer closed or reset the connection before a complete response.
    Reset,
    /// The response was not valid HTTP/1.1.
    Protocol,
    /// Any other I/O error.
    Io,
}

impl ErrorKind {
    /// The lowercase name used in reports (`connect`, `timeout`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Protocol => "protocol",
            Self::Io => "io",
        }
    }

    /// Classifies an I/O error raised after the connection was established.
    pub(crate) fn of_io(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Self::Reset,
            io::ErrorKind::TimedOut => Self::Timeout,
            _ => Self::Io,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The failure of one request: its kind and a human-readable message.
#[derive(Debug, Clone)]
pub(crate) struct RequestError {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl RequestError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn io(err: &io::Error) -> Self {
        Self::new(ErrorKind::of_io(err), err.to_string())
    }
}
