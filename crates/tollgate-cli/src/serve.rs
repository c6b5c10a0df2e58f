//! `tollgate serve`: the reference service alone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tollgate_demo::llm::LlmSettings;
use tollgate_demo::server::{OnceStore, redact};
use tollgate_demo::{Database, FakeLlm, FakeLlmConfig, Service, ServiceConfig, StartError};

use crate::EXIT_USAGE;

/// Serves the reference service until Ctrl-C (or SIGTERM), then drains the requests in
/// progress. Logs go to stderr (`RUST_LOG`-style filter in `TOLLGATE_LOG`, default `info`).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// SQLite database file, created on first run (the same as `--database sqlite:PATH`).
    #[arg(long, value_name = "PATH", default_value = "tollgate.db")]
    db: PathBuf,
    /// The database: `sqlite:PATH`, or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` — one
    /// PostgreSQL database shared by every instance of the service.
    #[arg(long, value_name = "URL", conflicts_with = "db")]
    database: Option<String>,
    /// Keep the exactly-once records (daily reports, idempotent purchases) on this Redis
    /// server (`redis://HOST:PORT`) instead of in the database.
    #[arg(long, value_name = "URL")]
    once_store: Option<String>,
    /// What the `--once-store` Redis server must keep across a crash, checked at start:
    /// `fsync` (appendonly yes + appendfsync always: no acknowledged claim is lost),
    /// `every-second` (appendfsync everysec: up to a second may be lost) or `unchecked`.
    #[arg(long, value_name = "LEVEL", default_value = "fsync", value_parser = parse_durability)]
    once_store_durability: tollgate_redis::Durability,
    /// Base URL of the LLM analysis API (`http://host:port`).
    #[arg(long, value_name = "URL", required_unless_present = "fake_llm")]
    llm_url: Option<String>,
    /// Start a fake LLM on a free loopback port and use it.
    #[arg(long, conflicts_with = "llm_url")]
    fake_llm: bool,
    /// The fake LLM's latency per call.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = crate::duration::parse)]
    fake_llm_latency: Duration,
    /// Timeout of one LLM attempt.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::duration::parse)]
    llm_timeout: Duration,
    /// LLM attempts in all, the first included.
    #[arg(long, value_name = "N", default_value_t = 3)]
    llm_attempts: u32,
    /// Pooled database connections.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pool: usize,
    /// How long an instance holds a report's exactly-once claim without renewing it; after an
    /// instance crashes mid-report, the others wait this long, then reconcile the day.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::duration::parse)]
    lease: Duration,
    /// Outbox workers applying side effects (saved interview questions); 0 leaves them in the
    /// outbox for another instance.
    #[arg(long, value_name = "N", default_value_t = 1)]
    outbox_workers: usize,
    /// Attempts of a side effect before it is dead-lettered.
    #[arg(long, value_name = "N", default_value_t = 5)]
    save_attempts: u32,
    /// Also serve the naive `/naive/…` routes (the S3 bug, for demonstrations).
    #[arg(long)]
    naive: bool,
    /// The chat's contracts file (TOML, as `tollgate plan check` reads it), validated at start;
    /// default: the plan shipped with the service.
    #[arg(long, value_name = "PATH")]
    chat_plan: Option<PathBuf>,
}

pub(crate) async fn main(args: ServeArgs) -> ExitCode {
    let fake = if args.fake_llm {
        let config = FakeLlmConfig {
            latency: args.fake_llm_latency,
            failure_rate: 0.0,
        };
        match FakeLlm::start(config).await {
            Ok(fake) => {
                eprintln!("fake LLM listening on {}", fake.addr());
                Some(fake)
            }
            Err(e) => return fail(&format!("cannot start the fake LLM: {e}")),
        }
    } else {
        None
    };
    let database = match &args.database {
        Some(url) => match url.parse::<Database>() {
            Ok(database) => database,
            Err(e) => return fail(&format!("--database {}: {e}", redact(url))),
        },
        None => Database::Sqlite(args.db.clone()),
    };
    let once_store = match &args.once_store {
        None => OnceStore::Database,
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            OnceStore::Redis {
                url: url.clone(),
                durability: args.once_store_durability,
            }
        }
        Some(url) => {
            return fail(&format!(
                "--once-store {}: expected redis://HOST:PORT",
                redact(url)
            ));
        }
    };
    let llm_url = match (&fake, args.llm_url) {
        (Some(fake), _) => fake.url(),
        (None, Some(url)) => url,
        (None, None) => return fail("--llm-url or --fake-llm is required"),
    };
    let mut config = ServiceConfig::new(args.listen, database, llm_url);
    config.once_store = once_store;
    config.pool_size = args.pool.max(1);
    config.naive = args.naive;
    config.lease = args.lease;
    config.outbox_workers = args.outbox_workers;
    config.save_attempts = args.save_attempts.max(1);
    if let Some(path) = &args.chat_plan {
        match std::fs::read_to_string(path) {
            Ok(text) => config.chat_plan = text,
            Err(e) => return fail(&format!("cannot read {}: {e}", path.display())),
        }
    }
    config.llm = LlmSettings {
        timeout: args.llm_timeout,
        attempts: args.llm_attempts.max(1),
        ..LlmSettings::default()
    };
    let service = match Service::start(config).await {
        Ok(service) => service,
        Err(StartError::Db { database, source }) => {
            return fail(&format!("--database {database}: {source}"));
        }
        Err(StartError::OnceStore { url, source }) => {
            return fail(&format!("--once-store {url}: {source}"));
        }
        Err(e) => return fail(&e.to_string()),
    };
    eprintln!("tollgate service listening on {}", service.url());
    shutdown_signal().await;
    eprintln!("shutting down");
    match service.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

fn parse_durability(text: &str) -> Result<tollgate_redis::Durability, String> {
    match text {
        "fsync" => Ok(tollgate_redis::Durability::Fsync),
        "every-second" => Ok(tollgate_redis::Durability::EverySecond),
        "unchecked" => Ok(tollgate_redis::Durability::Unchecked),
        _ => Err("expected fsync, every-second or unchecked".into()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Prints `message` as one line (a driver's message may hold line breaks) and exits 2.
fn fail(message: &str) -> ExitCode {
    let line: Vec<&str> = message.split_whitespace().collect();
    eprintln!("error: {}", line.join(" "));
    ExitCode::from(EXIT_USAGE)
}
