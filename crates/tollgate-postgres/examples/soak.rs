//! Soak: 1,000,000 exactly-once claims of 10,000 keys from 4 processes on one PostgreSQL,
//! then a count of the keys whose work ran more than once (it must be 0).
//!
//! ```sh
//! cargo run --release -p tollgate-postgres --example soak -- [claims] [keys] [processes]
//! ```
//!
//! The parent starts a throw-away `postgres` (fsync on, a free loopback port), then runs this
//! same binary `processes` times as children; each child makes `claims / processes` calls of
//! `Once::run` over keys drawn at random, 32 at a time on a pool of 16 connections. The work of
//! a call inserts one row into `soak.runs` (a table without any unique constraint: nothing but
//! the store stops a second run) and returns. At the end the parent counts rows per key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tollgate::once::{Error, Failure, Fingerprint, Key, OnInProgress, Once};
use tollgate_postgres::PostgresStore;
use tollgate_testkit::server::PostgresServer;

const TASKS: usize = 32;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        let url = &args[1];
        let claims: u64 = args[2].parse().unwrap();
        let keys: u64 = args[3].parse().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(child(url, claims, keys));
        return;
    }
    let claims: u64 = args.first().map_or(1_000_000, |a| a.parse().unwrap());
    let keys: u64 = args.get(1).map_or(10_000, |a| a.parse().unwrap());
    let processes: u64 = args.get(2).map_or(4, |a| a.parse().unwrap());
    let server = PostgresServer::start().unwrap();
    server
        .psql(
            "postgres",
            "CREATE SCHEMA soak; CREATE TABLE soak.runs (key text NOT NULL, pid int NOT NULL)",
        )
        .unwrap();
    println!("{claims} claims of {keys} keys from {processes} processes on one PostgreSQL");
    let started = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["child", &server.url()])
                .arg((claims / processes).to_string())
                .arg(keys.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child failed");
    }
    let elapsed = started.elapsed();
    let runs = server
        .psql("postgres", "SELECT count(*) FROM soak.runs")
        .unwrap();
    let distinct = server
        .psql("postgres", "SELECT count(DISTINCT key) FROM soak.runs")
        .unwrap();
    let twice = server
        .psql(
            "postgres",
            "SELECT count(*) FROM (SELECT key FROM soak.runs GROUP BY key HAVING count(*) > 1) t",
        )
        .unwrap();
    println!(
        "{:.1} s, {:.0} claims/s; work ran {runs} times on {distinct} keys; keys run twice: {twice}",
        elapsed.as_secs_f64(),
        claims as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(twice, "0", "a key's work ran twice");
}

async fn child(url: &str, claims: u64, keys: u64) {
    let store = PostgresStore::connect(url).await.unwrap();
    let (client, connection) =
        tollgate_postgres::tokio_postgres::connect(url, tollgate_postgres::tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let client = Arc::new(client);
    let once = Arc::new(
        Once::builder(store)
            .on_in_progress(OnInProgress::Conflict)
            .lease(Duration::from_secs(30), Duration::from_secs(10))
            .build(),
    );
    let next = Arc::new(AtomicU64::new(0));
    let outcomes: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (once, client, next, outcomes) = (
                Arc::clone(&once),
                Arc::clone(&client),
                Arc::clone(&next),
                Arc::clone(&outcomes),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < claims {
                    let key = Key::new("soak", fastrand::u64(..keys).to_string());
                    let name = key.key().to_owned();
                    let client = Arc::clone(&client);
                    let work = || async move {
                        client
                            .execute(
                                "INSERT INTO soak.runs (key, pid) VALUES ($1, pg_backend_pid())",
                                &[&name],
                            )
                            .await
                            .map_err(|e| Failure::retryable(e.to_string()))?;
                        Ok::<_, Failure<String>>(())
                    };
                    let slot = match once.run(key, Fingerprint::new("v1"), work).await {
                        Ok(output) if !output.replayed => 0,
                        Ok(_) => 1,
                        Err(Error::Conflict) => 2,
                        Err(e) => panic!("claim failed: {e:?}"),
                    };
                    outcomes[slot].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let [ran, replayed, conflict, _] = &*outcomes;
    println!(
        "child {}: ran {} replayed {} conflict {}",
        std::process::id(),
        ran.load(Ordering::Relaxed),
        replayed.load(Ordering::Relaxed),
        conflict.load(Ordering::Relaxed)
    );
}
