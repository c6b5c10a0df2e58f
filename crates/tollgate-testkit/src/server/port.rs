//! Free loopback ports: bind port 0, note the port, release it.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

use super::ServerError;

/// The machine's own PostgreSQL and Redis listen there: never hand these out.
pub(crate) const RESERVED: [u16; 2] = [5432, 6379];

/// How many ports are tried before giving up.
pub(crate) const TRIES: u32 = 20;

/// Ports already handed out by this process, so that two servers started at once by two tests
/// never race for the same port.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A loopback port that was free a moment ago and that this process has not handed out before.
///
/// Another process may still take it before the server binds it: callers retry with a new port
/// when the server reports the address in use.
pub(crate) fn free_loopback_port() -> Result<u16, ServerError> {
    for _ in 0..TRIES {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| ServerError::io("bind a loopback port", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| ServerError::io("read the bound loopback port", e))?
            .port();
        drop(listener);
        if RESERVED.contains(&port) {
            continue;
        }
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
    Err(ServerError::NoFreePort { tries: TRIES })
}
