//! The one error type of the throw-away servers.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a throw-away server could not be found, started, signalled or stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// A program the server needs is not installed; the message says what to install.
    MissingBinary {
        /// The program looked for (`initdb`, `postgres`, `psql`, `redis-server`).
        binary: String,
        /// Where it was looked for.
        searched: String,
        /// The command that installs it (`apt-get install postgresql`).
        install: &'static str,
    },
    /// An operating-system call failed.
    Io {
        /// What was being done, as a verb phrase (`spawn postgres`).
        action: String,
        /// The failure.
        source: io::Error,
    },
    /// A helper program (`initdb`, `psql`) exited unsuccessfully.
    Command {
        /// The program.
        program: String,
        /// How it exited.
        status: ExitStatus,
        /// What it printed (standard error, then standard output).
        output: String,
    },
    /// The server exited before it was ready to accept connections.
    Exited {
        /// The server (`postgres`, `redis-server`).
        server: &'static str,
        /// How it exited.
        status: ExitStatus,
        /// The end of its log since it was started.
        log: String,
    },
    /// The server was not ready before the deadline; it has been killed.
    NotReady {
        /// The server (`postgres`, `redis-server`).
        server: &'static str,
        /// How long it was waited for.
        waited: Duration,
        /// The end of its log since it was started.
        log: String,
    },
    /// Another process holds the port that a restart must reuse.
    PortInUse {
        /// The server (`postgres`, `redis-server`).
        server: &'static str,
        /// The port.
        port: u16,
    },
    /// No free loopback port was found (or every one tried was taken before the server bound it).
    NoFreePort {
        /// How many ports were tried.
        tries: u32,
    },
    /// Running as root, and the unprivileged user to run postgres as does not exist.
    NoUnprivilegedUser {
        /// The user looked for in `/etc/passwd`.
        user: &'static str,
    },
    /// The operation needs a running server, and the server is not running.
    NotRunning {
        /// The server (`postgres`, `redis-server`).
        server: &'static str,
        /// The operation (`pause`).
        action: &'static str,
    },
    /// An operation did not finish before its deadline.
    Timeout {
        /// The operation, as a noun phrase (`graceful stop of postgres`).
        action: String,
        /// How long it was waited for.
        waited: Duration,
    },
}

impl ServerError {
    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Self {
        ServerError::Io {
            action: action.into(),
            source,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::MissingBinary {
                binary,
                searched,
                install,
            } => write!(
                f,
                "`{binary}` not found (searched {searched}): install it with `{install}`"
            ),
            ServerError::Io { action, source } => write!(f, "could not {action}: {source}"),
            ServerError::Command {
                program,
                status,
                output,
            } => write!(f, "`{program}` failed ({status}): {output}"),
            ServerError::Exited {
                server,
                status,
                log,
            } => write!(
                f,
                "{server} exited ({status}) before it was ready; its log ends with:\n{log}"
            ),
            ServerError::NotReady {
                server,
                waited,
                log,
            } => write!(
                f,
                "{server} was not ready after {waited:?} and was killed; its log ends with:\n{log}"
            ),
            ServerError::PortInUse { server, port } => write!(
                f,
                "port {port} of {server} is held by another process, so it cannot be restarted there"
            ),
            ServerError::NoFreePort { tries } => {
                write!(f, "no free loopback port after {tries} tries")
            }
            ServerError::NoUnprivilegedUser { user } => write!(
                f,
                "running as root and user `{user}` does not exist (postgres refuses to run as root)"
            ),
            ServerError::NotRunning { server, action } => {
                write!(f, "cannot {action}: {server} is not running")
            }
            ServerError::Timeout { action, waited } => {
                write!(f, "{action} did not finish within {waited:?}")
            }
        }
    }
}

impl StdError for ServerError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ServerError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
