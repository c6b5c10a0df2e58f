//! Throw-away PostgreSQL and Redis servers for tests.
//!
//! [`PostgresServer::start`] runs `initdb` into a fresh temporary directory and `postgres` on a
//! free port of 127.0.0.1; [`RedisServer::start`] runs `redis-server` the same way. Neither ever
//! uses the standard ports 5432 and 6379, nor listens beyond the loopback address. Both wait,
//! with a deadline, until the server answers (a protocol startup that reaches ReadyForQuery;
//! `PING` answered with `+PONG`), and both inject faults:
//!
//! - `kill()`: SIGKILL to the server and all its descendants (frozen first, so none escapes),
//!   then reap: a crash;
//! - `pause()` / `resume()`: SIGSTOP / SIGCONT to the server and all its descendants: a hung
//!   server;
//! - `stop()`: graceful shutdown; `restart()`: start again on the same port and directory and
//!   wait until ready (after a kill, PostgreSQL recovers from its WAL first).
//!
//! Dropping a server SIGKILLs it, reaps it and removes its directory, also when the test
//! panics. A missing program is an error that says what to install
//! ([`ServerError::MissingBinary`]); the tests never skip silently.
//!
//! Run as root, `initdb` and `postgres` run as user `nobody` (postgres refuses root). The first
//! server started makes the test process a child subreaper (Linux), so that the server's own
//! children, orphaned when it is killed, are reaped rather than left as zombies.
//!
//! The API is blocking, every wait bounded by a deadline: call it from a plain `#[test]`, or
//! through `tokio::task::spawn_blocking` where an async test must keep other tasks running. A
//! test process that is itself SIGKILLed cannot drop its servers, which then keep running; they
//! stay in the test's process group, so a Ctrl-C in a terminal does reach them.

mod binary;
mod error;
mod port;
mod postgres;
mod process;
mod redis;

pub use error::ServerError;
pub use postgres::{PostgresOptions, PostgresServer};
pub use redis::{AppendFsync, RedisOptions, RedisServer};
