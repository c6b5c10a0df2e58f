//! `apalis-outbox`: tollgate's outbox benchmark ("effects per second, enqueue → done") done by
//! `apalis` 1.0 with its PostgreSQL backend `apalis-postgres` 1.0 (sqlx 0.9).
//!
//! What one round measures: `--effects` jobs are pushed by `--producers` concurrent tokio tasks,
//! each job with its own `TaskSink::push` (apalis-postgres runs every flush of its sink in a
//! transaction of its own: `BEGIN; INSERT …; COMMIT`), while the already running worker(s)
//! process them with a no-op handler. The clock runs from just before the first push until every
//! job of the round is `Done` in `apalis.jobs`. One line per round goes to stdout:
//!
//! ```text
//! peer=apalis workers=<N> effects=<E> seconds=<float> effects_per_s=<float>
//! ```
//!
//! Run (a throw-away database; apalis-postgres keeps its tables in its own `apalis` schema, the
//! jobs in the queue `apalis-outbox`, so nothing collides with tollgate's or underway's tables):
//!
//! ```sh
//! cargo build --release -j 2
//! target/release/apalis-outbox --url postgres://postgres@127.0.0.1:55432/postgres \
//!     --effects 256 --producers 16 --workers 4 --rounds 3
//! ```
//!
//! Optional flags: `--mode concurrency|instances` (default `concurrency`: ONE worker built with
//! `.concurrency(N)`, the way apalis' README runs several handlers at once; `instances`: N
//! workers of concurrency 1, each with its own name, registration, fetch loop and listener, as
//! `Monitor::register_n` would run them), `--poll-ms <ms>` (fallback poll period, default 100)
//! and `--warmup <R>` (R extra rounds first, run and checked but not printed; default 0).
//!
//! How the workers are woken: `with_pubsub()` — each worker LISTENs on `apalis::job::insert`
//! (apalis-postgres' insert trigger NOTIFYs every new job) and fetches a batch on every
//! notification — plus an interval strategy of `--poll-ms` as a fallback (reading apalis-core
//! 1.0's `Persisted`, an idle plain `PostgresStorage` without a strategy is woken by nothing but
//! its heartbeat timer, every 30 s by default).
//! Everything else is apalis-postgres' default `Config`: batches of 10, `lock_tasks` and
//! `persist_results` on (without `persist_results` no completion is ever written).
//!
//! Note on the enqueue half: that trigger NOTIFYs from every enqueue transaction, and
//! PostgreSQL serializes notifying commits (each holds a global lock until its commit record is
//! flushed), so the 16 producers' commits cannot share an fsync.
//!
//! Completion condition: the handler bumps a counter; once it reaches `effects` (cheap, no
//! query while the round runs), the round polls `apalis.jobs` every millisecond until all
//! `effects` rows of the queue are `Done` — apalis records completions after the handler
//! returns (the worker's persistence layer drains them in batches, one `UPDATE … ; COMMIT` per
//! drain), so the counter alone would stop the clock too early.
//!
//! The workers are started once and reused by every round (apalis' natural way: a long-lived
//! worker); between rounds, outside the clock, the finished rows of the queue are deleted so every
//! round starts from an empty queue. The setup, or a round (its clean-up included), that has not
//! finished within 60 s is an error (exit status 1; 2 for a usage error).
//!
//! The pool is sized so nobody waits for a connection and all its connections are opened
//! before round 1; round 1 still pays for sqlx preparing each statement once per connection
//! (and looking up the library's types), so it is the slowest. Logs go to stderr (per round:
//! when the enqueues returned, when the handler count was reached, when all were recorded
//! done); stdout carries only the round lines.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The apalis queue (`job_type`) this benchmark pushes into.
const QUEUE: &str = "apalis-outbox";
/// A round (or the setup) not done by then is an error.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the workers get to register and connect their listeners before the first round.
const WARM_UP: Duration = Duration::from_millis(500);

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How the N concurrent handlers are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One worker, `.concurrency(N)`.
    Concurrency,
    /// N workers, `.concurrency(1)` each.
    Instances,
}

struct Args {
    url: String,
    effects: usize,
    producers: usize,
    workers: usize,
    rounds: usize,
    warmup: usize,
    mode: Mode,
    poll_ms: u64,
}

const USAGE: &str = "usage: apalis-outbox --url <postgres url> --effects <E> --producers <P> \
                     --workers <N> --rounds <R> [--mode concurrency|instances] [--poll-ms <ms>] \
                     [--warmup <rounds>]";

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let (mut effects, mut producers, mut workers, mut rounds) = (None, None, None, None);
    let mut mode = Mode::Concurrency;
    let mut poll_ms = 100;
    let mut warmup = 0;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
        let count = |v: &str| -> Result<usize, String> {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{flag} wants a positive integer, got {v:?}")),
            }
        };
        match flag.as_str() {
            "--url" => url = Some(value),
            "--effects" => effects = Some(count(&value)?),
            "--producers" => producers = Some(count(&value)?),
            "--workers" => workers = Some(count(&value)?),
            "--rounds" => rounds = Some(count(&value)?),
            "--poll-ms" => poll_ms = count(&value)? as u64,
            "--warmup" => {
                warmup = value
                    .parse()
                    .map_err(|_| format!("--warmup wants an integer, got {value:?}"))?
            }
            "--mode" => {
                mode = match value.as_str() {
                    "concurrency" => Mode::Concurrency,
                    "instances" => Mode::Instances,
                    _ => return Err(format!("--mode wants concurrency|instances, got {value:?}")),
                }
            }
            _ => return Err(format!("unknown argument {flag:?}; {USAGE}")),
        }
    }
    let missing = |name: &str| format!("missing {name}; {USAGE}");
    Ok(Args {
        url: url.ok_or_else(|| missing("--url"))?,
        effects: effects.ok_or_else(|| missing("--effects"))?,
        producers: producers.ok_or_else(|| missing("--producers"))?,
        workers: workers.ok_or_else(|| missing("--workers"))?,
        rounds: rounds.ok_or_else(|| missing("--rounds"))?,
        mode,
        poll_ms,
        warmup,
    })
}

/// What the no-op handler reports: how many jobs it ran this round, and a wake-up once that
/// reaches the round's target.
struct Progress {
    handled: AtomicUsize,
    target: AtomicUsize,
    reached: Notify,
}

impl Progress {
    fn record(&self) {
        let n = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.target.load(Ordering::SeqCst) {
            self.reached.notify_one();
        }
    }

    fn reset(&self, target: usize) {
        self.handled.store(0, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
    }
}

/// The no-op handler: counts, nothing else.
async fn noop(_effect: u64, progress: Data<Arc<Progress>>) -> Result<(), BoxDynError> {
    progress.record();
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("apalis-outbox: error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("apalis-outbox: error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(&args));
    // Anything still running (a stuck worker after an error) is dropped, not waited for.
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = e.to_string().replace('\n', " ");
            eprintln!("apalis-outbox: error: {line}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), Error> {
    let (instances, concurrency) = match args.mode {
        Mode::Concurrency => (1, args.workers),
        Mode::Instances => (args.workers, 1),
    };
    // Enough connections that nobody waits for the pool: every producer; per worker instance
    // one for its (sequential) register/fetch/complete/heartbeat statements and one for its
    // LISTEN connection, which sqlx takes from the pool; one for this program's own queries.
    let max_connections = args.producers + 2 * instances + 2;
    let pool = tokio::time::timeout(STEP_TIMEOUT, setup(args, max_connections))
        .await
        .map_err(|_| {
            format!(
                "setup (connect, migrations) did not finish within {} s",
                STEP_TIMEOUT.as_secs()
            )
        })??;

    let progress = Arc::new(Progress {
        handled: AtomicUsize::new(0),
        target: AtomicUsize::new(usize::MAX),
        reached: Notify::new(),
    });
    let storage = PostgresStorage::<u64>::new(&pool).with_config(Config::default().queue(QUEUE));

    let mut workers = JoinSet::new();
    let mut contexts = Vec::new();
    for i in 0..instances {
        let ctx = WorkerContext::new(&format!("{QUEUE}-{i}"));
        let backend = storage
            .clone()
            .with_pubsub()
            .poll_with_strategy(Strategy::new().interval(Duration::from_millis(args.poll_ms)));
        let worker = WorkerBuilder::new(&ctx)
            .backend(backend)
            .concurrency(concurrency)
            .data(progress.clone())
            .build(noop);
        workers.spawn(worker.run());
        contexts.push(ctx);
    }
    tokio::time::sleep(WARM_UP).await;
    eprintln!(
        "apalis-outbox: {instances} worker(s) x concurrency {concurrency} running (LISTEN \
         apalis::job::insert + {} ms fallback poll), pool of {max_connections}",
        args.poll_ms
    );

    let result = rounds(args, &storage, &pool, &progress, &mut workers).await;

    // Stop the workers gracefully after a clean run; after an error, `main` drops them.
    if result.is_ok() {
        for ctx in &contexts {
            // Errs only if the worker never started or already stopped: nothing to do then.
            let _ = ctx.stop();
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if stopped.is_err() {
            eprintln!("apalis-outbox: workers did not stop within 10 s; dropping them");
        }
    }
    result
}

/// Connects, runs apalis-postgres' migrations and clears what an earlier, interrupted run may
/// have left in the queue.
async fn setup(args: &Args, max_connections: usize) -> Result<PgPool, Error> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections as u32)
        .connect(&args.url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    open_all(&pool, max_connections).await?;
    PostgresStorage::setup(&pool)
        .await
        .map_err(|e| format!("apalis-postgres migrations: {e}"))?;
    clear_queue(&pool).await?;
    Ok(pool)
}

async fn rounds(
    args: &Args,
    storage: &PostgresStorage<u64>,
    pool: &PgPool,
    progress: &Arc<Progress>,
    workers: &mut JoinSet<Result<(), WorkerError>>,
) -> Result<(), Error> {
    for r in 1..=args.warmup + args.rounds {
        // The bound covers the clean-up before the round too; the clock starts inside `round`.
        let bounded = async {
            clear_queue(pool).await?;
            progress.reset(args.effects);
            round(args, storage, pool, progress, workers).await
        };
        let timing = tokio::time::timeout(STEP_TIMEOUT, bounded)
            .await
            .map_err(|_| {
                format!(
                    "round {r} did not finish within {} s ({} of {} effects handled)",
                    STEP_TIMEOUT.as_secs(),
                    progress.handled.load(Ordering::SeqCst),
                    args.effects
                )
            })??;
        let handled = progress.handled.load(Ordering::SeqCst);
        if handled != args.effects {
            eprintln!(
                "apalis-outbox: round {r}: handler ran {handled} times for {} effects",
                args.effects
            );
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "apalis-outbox: round {r}: enqueues done at {:.1} ms, handler count reached at \
             {:.1} ms, all recorded done at {:.1} ms",
            ms(timing.enqueued),
            ms(timing.handled),
            ms(timing.done)
        );
        if r <= args.warmup {
            continue; // a warm-up round: run, checked, not printed
        }
        let seconds = timing.done.as_secs_f64();
        println!(
            "peer=apalis workers={} effects={} seconds={seconds:.6} effects_per_s={:.1}",
            args.workers,
            args.effects,
            args.effects as f64 / seconds
        );
    }
    Ok(())
}

/// When a round's phases ended, measured from just before its first enqueue.
struct Timing {
    /// Every producer's enqueues have returned.
    enqueued: Duration,
    /// The handler has run `effects` times.
    handled: Duration,
    /// The library has recorded every job as done: the round's time.
    done: Duration,
}

/// One round: push from the producers, wait for every job to be `Done`.
async fn round(
    args: &Args,
    storage: &PostgresStorage<u64>,
    pool: &PgPool,
    progress: &Progress,
    workers: &mut JoinSet<Result<(), WorkerError>>,
) -> Result<Timing, Error> {
    let started = Instant::now();
    let mut producers = JoinSet::new();
    let mut next = 0u64;
    for p in 0..args.producers {
        // Spread the effects as evenly as possible over the producers.
        let share =
            (args.effects / args.producers + usize::from(p < args.effects % args.producers)) as u64;
        // A clone shares the pool and config; its sink buffer is its own.
        let (first, mut sink) = (next, storage.clone());
        next += share;
        producers.spawn(async move {
            for effect in first..first + share {
                sink.push(effect).await?;
            }
            Ok::<(), TaskSinkError<apalis_postgres::Error>>(())
        });
    }
    while let Some(joined) = producers.join_next().await {
        joined
            .map_err(|e| format!("producer task: {e}"))?
            .map_err(|e| format!("push: {e}"))?;
    }
    let enqueued = started.elapsed();

    // Wait for the handler count (or a worker dying), then for apalis' own bookkeeping.
    tokio::select! {
        () = progress.reached.notified() => {}
        exited = workers.join_next() => {
            return Err(match exited {
                Some(Ok(Err(e))) => format!("worker failed: {e}"),
                Some(Err(e)) => format!("worker task: {e}"),
                _ => "worker stopped unexpectedly".to_owned(),
            }
            .into());
        }
    }
    let handled = started.elapsed();
    loop {
        let (done, total): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'Done'), count(*) \
             FROM apalis.jobs WHERE job_type = $1",
        )
        .bind(QUEUE)
        .fetch_one(pool)
        .await
        .map_err(|e| format!("count done jobs: {e}"))?;
        if total as usize != args.effects {
            return Err(format!("queue holds {total} jobs, expected {}", args.effects).into());
        }
        if done as usize == args.effects {
            let done = started.elapsed();
            return Ok(Timing {
                enqueued,
                handled,
                done,
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Opens all `n` connections of the pool up front (they wait idle in it), so that round 1 does
/// not pay for connecting, as a warmed-up application's pool would not.
async fn open_all(pool: &PgPool, n: usize) -> Result<(), Error> {
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        connections.push(pool.acquire().await.map_err(|e| format!("connect: {e}"))?);
    }
    Ok(())
}

/// Deletes every job of our queue.
async fn clear_queue(pool: &PgPool) -> Result<(), Error> {
    sqlx::query("DELETE FROM apalis.jobs WHERE job_type = $1")
        .bind(QUEUE)
        .execute(pool)
        .await
        .map_err(|e| format!("clear queue: {e}"))?;
    Ok(())
}
