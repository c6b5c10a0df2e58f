//! The thread that owns the SQLite connection: async callers send it closures over a channel.

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
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(store_error)
    }
}

fn stopped() -> StoreError {
    StoreError::msg(
        StoreErrorKind::Unavailable,
        "the sqlite connection thread stopped",
    )
}
