//! Starting and stopping the reference service on a socket.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::db::{Database, Db, DbError};
use crate::llm::{LlmClient, LlmConfigError, LlmSettings};
use crate::store::ServiceStore;

/// The service's configuration.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Where to listen (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The database: an SQLite file (created on first run) or a PostgreSQL database shared
    /// by every instance.
    pub database: Database,
    /// Where the exactly-once records live: the database (default) or Redis.
    pub once_store: OnceStore,
    /// The LLM API's base URL.
    pub llm_url: String,
    /// How the LLM is called.
    pub llm: LlmSettings,
    /// Pooled database connections (reads and the naive path).
    pub pool_size: usize,
    /// Serve the naive `/naive/…` routes (demo mode).
    pub naive: bool,
    /// How long an instance holds a daily report's exactly-once claim without renewing it:
    /// after an instance crashes mid-report, the others answer 409 this long, then reconcile
    /// the day from the report table (default 60 s).
    pub lease: Duration,
    /// Outbox workers applying side effects (S4's saves); 0 runs none, so effects wait in the
    /// outbox for an instance that does (default 1).
    pub outbox_workers: usize,
    /// Attempts of a side effect before it is dead-lettered (default 5).
    pub save_attempts: u32,
    /// The chat's contracts (TOML); validated at start. Default: [`crate::chat::DEFAULT_PLAN`].
    pub chat_plan: String,
}

impl ServiceConfig {
    /// A configuration with the defaults: a pool of 20 connections, no naive routes.
    pub fn new(
        listen: SocketAddr,
        database: impl Into<Database>,
        llm_url: impl Into<String>,
    ) -> Self {
        ServiceConfig {
            listen,
            database: database.into(),
            once_store: OnceStore::Database,
            llm_url: llm_url.into(),
            llm: LlmSettings::default(),
            pool_size: 20,
            naive: false,
            lease: Duration::from_secs(60),
            outbox_workers: 1,
            save_attempts: 5,
            chat_plan: crate::chat::DEFAULT_PLAN.to_owned(),
        }
    }
}

/// Where the service keeps its exactly-once records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnceStore {
    /// In its database, beside the rows they protect (a report and the completion of its
    /// claim commit in one transaction).
    Database,
    /// On a Redis server shared by the instances.
    Redis {
        /// Its URL, `redis://HOST:PORT`.
        url: String,
        /// What the server must keep across a crash, checked when the service starts (by
        /// default `appendonly yes` + `appendfsync always`: an acknowledged claim survives).
        durability: tollgate_redis::Durability,
    },
}

/// `url` with the password of its user info (`scheme://user:PASSWORD@host`) left out.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

/// Why the service did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The chat's plan is invalid (the message names every problem).
    #[error(transparent)]
    ChatPlan(#[from] crate::chat::ChatPlanError),
    /// The database could not be opened.
    #[error("cannot open {database}: {source}")]
    Db {
        /// The database (any password left out).
        database: String,
        /// Why.
        source: DbError,
    },
    /// The Redis server of the exactly-once records could not be used.
    #[error("cannot use {url}: {source}")]
    OnceStore {
        /// Its URL (any password left out).
        url: String,
        /// Why.
        source: tollgate::store::StoreError,
    },
    /// The LLM settings are invalid.
    #[error(transparent)]
    Llm(#[from] LlmConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A running service; [`shutdown`](Self::shutdown) stops it gracefully, dropping it stops it
/// too.
#[derive(Debug)]
pub struct Service {
    addr: SocketAddr,
    app: App,
    stop: watch::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    purger: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Service {
    /// Opens the database, binds the address and serves in a background task.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start(config: ServiceConfig) -> Result<Service, StartError> {
        let chat = crate::chat::Chat::new(&config.chat_plan)?;
        let llm = LlmClient::new(&config.llm_url, config.llm.clone())?;
        let db = Db::open(&config.database, config.pool_size)
            .await
            .map_err(|source| StartError::Db {
                database: config.database.to_string(),
                source,
            })?;
        let once_store = match &config.once_store {
            OnceStore::Database => db.store(),
            OnceStore::Redis { url, durability } => {
                let store = tollgate_redis::RedisStore::builder(url.as_str())
                    .durability(*durability)
                    .connect()
                    .await;
                ServiceStore::Redis(store.map_err(|source| StartError::OnceStore {
                    url: redact(url),
                    source,
                })?)
            }
        };
        let app = App::new(db, once_store, llm, config.naive, chat, config.lease);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let (stop, mut stopped) = watch::channel(());
        let router = crate::routes::router(&app);
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                })
                .await
        });
        let purger = tokio::spawn(purge_finished_records(app.clone(), stop.subscribe()));
        let workers = (0..config.outbox_workers)
            .map(|_| {
                let worker = crate::questions::worker(&app, config.save_attempts);
                let mut stopped = stop.subscribe();
                tokio::spawn(async move {
                    worker
                        .run(async move {
                            let _ = stopped.changed().await;
                        })
                        .await;
                })
            })
            .collect();
        tracing::info!(%addr, database = %config.database, once_store = app.once_store().backend(), llm = %config.llm_url, naive = config.naive, "tollgate service listening");
        Ok(Service {
            addr,
            app,
            stop,
            task,
            purger,
            workers,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its state (database, LLM client), for checks from the same process.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Stops accepting connections, lets the requests in progress finish, and waits.
    ///
    /// # Errors
    /// The server's I/O error, if it failed.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        let _ = self.purger.await;
        for worker in self.workers {
            let _ = worker.await;
        }
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// How often finished exactly-once records past their retention are deleted.
pub const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Deletes the finished exactly-once records (daily reports, idempotent purchases) whose
/// retention has ended, at start and every [`PURGE_EVERY`], until the service stops. A purged
/// daily-report key is still answered 409: the report itself is in its table.
async fn purge_finished_records(app: App, mut stopped: watch::Receiver<()>) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // A stop signal, or the service dropped without one.
            _ = stopped.changed() => return,
            _ = every.tick() => match app.once().purge().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged finished exactly-once records"),
                Err(e) => tracing::warn!(error = %e, "purging exactly-once records failed"),
            },
        }
    }
}
