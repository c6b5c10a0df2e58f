//! The pool of SQLite connections serving reads and the naive path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tollgate_sqlite::rusqlite::{self, Connection};

use super::{BUSY_TIMEOUT, DbError};

/// A fixed-size pool of SQLite connections to one file. A connection is opened when first
/// needed; one that comes back inside a transaction (its user was cancelled) is closed, which
/// rolls the transaction back, and replaced by a fresh one later.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    path: PathBuf,
    idle: std::sync::Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    pub(super) fn new(path: PathBuf, size: usize) -> Pool {
        Pool {
            inner: Arc::new(PoolInner {
                path,
                idle: std::sync::Mutex::new(Vec::with_capacity(size)),
                permits: Arc::new(Semaphore::new(size)),
            }),
        }
    }

    /// Waits for a free connection.
    ///
    /// # Errors
    /// When a new connection cannot be opened.
    pub async fn get(&self) -> Result<PooledConn, DbError> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| DbError::Other("the pool is closed".into()))?;
        let idle = self.inner.idle.lock().map_or(None, |mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let path = self.inner.path.clone();
                tokio::task::spawn_blocking(move || open_pooled(&path))
                    .await
                    .map_err(|e| DbError::Other(e.to_string()))?
                    .map_err(|e| DbError::from_sqlite(&e))?
            }
        };
        Ok(PooledConn {
            conn: Some(conn),
            pool: Arc::clone(&self.inner),
            _permit: permit,
        })
    }
}

fn open_pooled(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// A connection taken from the [`Pool`]; given back when dropped.
#[derive(Debug)]
pub struct PooledConn {
    conn: Option<Connection>,
    pool: Arc<PoolInner>,
    _permit: OwnedSemaphorePermit,
}

impl PooledConn {
    /// Runs `f` on this connection on a blocking thread (never on the runtime's workers). The
    /// outer error is a lost connection; the inner one is SQLite's.
    ///
    /// # Errors
    /// [`DbError::Other`] when the connection was lost (a previous call panicked).
    pub async fn run<R, F>(&mut self, f: F) -> Result<rusqlite::Result<R>, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let conn = self
            .conn
            .take()
            .ok_or_else(|| DbError::Other("the pooled connection was lost".into()))?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&conn);
            (conn, result)
        })
        .await
        .map_err(|e| DbError::Other(e.to_string()))?;
        self.conn = Some(conn);
        Ok(result)
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if conn.is_autocommit() {
            if let Ok(mut idle) = self.pool.idle.lock() {
                idle.push(conn);
            }
        }
        // Otherwise the connection is dropped here, which rolls back its transaction.
    }
}
