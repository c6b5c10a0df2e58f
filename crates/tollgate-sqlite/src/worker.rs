//! The thread that owns the SQLite connection: async callers send it closures over a channel.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;
use tollgate::store::{StoreError, StoreErrorKind};

use crate::error::store_error;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A handle to the connection thread; the thread ends when the last handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread, opens `path` on it and prepares the connection with `setup`.
    pub(crate) async fn start(
        path: PathBuf,
        busy_timeout: Duration,
        setup: fn(&Connection) -> rusqlite::Result<()>,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened, ready) = oneshot::channel();
        std::thread::Builder::new()
            .name("tollgate-sqlite".into())
            .spawn(move || {
                let conn = Connection::open(&path).and_then(|conn| {
                    conn.busy_timeout(busy_timeout)?;
                    setup(&conn)?;
                    Ok(conn)
                });
                let mut conn = match conn {
                    Ok(conn) => {
                        let _ = opened.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                for job in queue {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::new(StoreErrorKind::Unavailable, e))?;
        ready.await.map_err(|_| stopped())?.map_err(store_error)?;
        Ok(Worker { jobs })
    }

    /// Runs `f` on the connection thread and returns its result.
    ///
    /// A panic in `f` (the application's closure, a value's `Serialize`) is caught on the
    /// thread: the transaction it left open is rolled back, the caller gets a
    /// [`StoreErrorKind::Other`] error naming the panic, and the thread goes on serving every
    /// other caller of the store. Uncaught, it would end the thread, and with it the store.
    /// Only the transaction is undone: whatever else the closure changed on the connection
    /// before it panicked (a `PRAGMA`, an `ATTACH`, a hook) stays for the store's later jobs.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let ran = catch_unwind(AssertUnwindSafe(|| f(conn)));
            if ran.is_err() {
                roll_back_after_panic(conn);
            }
            let _ = reply.send(ran);
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        match answer.await.map_err(|_| stopped())? {
            Ok(result) => result.map_err(store_error),
            Err(payload) => Err(panicked(payload.as_ref())),
        }
    }
}

/// Ends a transaction a panicking job left open (one it held as a `rusqlite::Transaction` was
/// already rolled back as the panic unwound; one begun with plain SQL was not).
fn roll_back_after_panic(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "sqlite: rolling back after a panicking job failed");
    }
}

fn panicked(payload: &(dyn std::any::Any + Send)) -> StoreError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
    tracing::error!(panic = %message, "sqlite: a job on the connection thread panicked");
    StoreError::msg(
        StoreErrorKind::Other,
        format!("a job on the sqlite connection thread panicked: {message}"),
    )
}

fn stopped() -> StoreError {
    StoreError::msg(
        StoreErrorKind::Unavailable,
        "the sqlite connection thread stopped",
    )
}
