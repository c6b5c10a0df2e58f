//! Throughput and latency of the reference service on this machine, for distinct users.
//!
//! ```sh
//! cargo run --release -p tollgate-demo --example load -- [requests] [concurrency] [sqlite|postgres|both]
//! ```
//!
//! Starts the fake LLM (no latency: the service's own cost is measured) and, in one run: one
//! instance of the service on a temporary SQLite file, then **two instances on one
//! PostgreSQL** (a throw-away server on a free loopback port, started here), requests spread
//! across them in turn. Each setup is driven over keep-alive HTTP/1.1 connections from this
//! process, `concurrency` requests in flight, for each workload in turn:
//! - `POST /users/{u}/letters` — one write transaction;
//! - `GET /users/{u}/daily-reports/{d}` — a pooled read;
//! - `POST /users/{u}/daily-reports/{d}` guarded — exactly-once claim, read, LLM call, one
//!   write transaction, complete (every request a distinct user, so every one does the work);
//! - the same through the naive path, for the cost of the guarantee;
//! - `POST /wallets/{w}/purchases` — one conditional update.
//!
//! `failed` counts answers other than the workload's success status (201, or 200 for reads).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use tollgate_demo::client::HttpClient;
use tollgate_demo::{Database, FakeLlm, FakeLlmConfig, Service, ServiceConfig};
use tollgate_testkit::server::{PostgresOptions, PostgresServer};

const DATE: &str = "2026-11-21";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map_or(5_000, |a| a.parse().expect("requests"));
    let concurrency: usize = args.next().map_or(32, |a| a.parse().expect("concurrency"));
    let setups = args.next().unwrap_or_else(|| "both".to_owned());
    let llm = FakeLlm::start(FakeLlmConfig {
        latency: Duration::ZERO,
        failure_rate: 0.0,
    })
    .await
    .unwrap();
    println!(
        "{requests} requests per workload, {concurrency} in flight, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if setups != "postgres" {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::from(dir.path().join("load.db"));
        println!("\n1 instance, SQLite");
        drive(&llm, &[database], requests, concurrency).await;
    }
    if setups != "sqlite" {
        // Durable as a production server (fsync on), with room for 2 pools of 20.
        let server = PostgresServer::start_with(PostgresOptions::new().fsync(true)).unwrap();
        let database: Database = server.url().parse().unwrap();
        println!("\n2 instances, one PostgreSQL");
        drive(&llm, &[database.clone(), database], requests, concurrency).await;
    }
    println!("LLM calls: {}", llm.stats().calls);
}

/// One service per database in `databases`; every workload spread across them in turn.
async fn drive(llm: &FakeLlm, databases: &[Database], requests: usize, concurrency: usize) {
    let mut services = Vec::new();
    for database in databases {
        let mut config = ServiceConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            database.clone(),
            llm.url(),
        );
        config.naive = true;
        services.push(Service::start(config).await.unwrap());
    }
    let base = Arc::new(services.iter().map(Service::url).collect::<Vec<_>>());
    let client = HttpClient::new();
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "workload", "req/s", "p50 ms", "p99 ms", "max ms", "failed"
    );

    let letter = |i: usize| {
        (
            Method::POST,
            format!("/users/u{i}/letters"),
            format!(r#"{{"date":"{DATE}","text":"letter of user {i}"}}"#),
            StatusCode::CREATED,
        )
    };
    run(
        &client,
        &base,
        "POST letters (write)",
        requests,
        concurrency,
        letter,
    )
    .await;
    run(
        &client,
        &base,
        "POST daily-report, guarded",
        requests,
        concurrency,
        |i| {
            (
                Method::POST,
                format!("/users/u{i}/daily-reports/{DATE}"),
                String::new(),
                StatusCode::CREATED,
            )
        },
    )
    .await;
    run(
        &client,
        &base,
        "GET daily-report (read)",
        requests,
        concurrency,
        |i| {
            (
                Method::GET,
                format!("/users/u{i}/daily-reports/{DATE}"),
                String::new(),
                StatusCode::OK,
            )
        },
    )
    .await;
    run(
        &client,
        &base,
        "POST daily-report, naive",
        requests,
        concurrency,
        |i| {
            (
                Method::POST,
                format!("/naive/users/u{i}/daily-reports/{DATE}"),
                String::new(),
                StatusCode::CREATED,
            )
        },
    )
    .await;
    for i in 0..concurrency {
        let answer = client
            .send(
                Method::PUT,
                &format!("{}/wallets/w{i}", base[0]),
                r#"{"balance":1000000000}"#.to_owned(),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    run(
        &client,
        &base,
        "POST purchases",
        requests,
        concurrency,
        move |i| {
            (
                Method::POST,
                format!("/wallets/w{}/purchases", i % concurrency),
                r#"{"item":"cola","price":1}"#.to_owned(),
                StatusCode::CREATED,
            )
        },
    )
    .await;
    for service in services {
        service.shutdown().await.unwrap();
    }
}

async fn run<F>(
    client: &HttpClient,
    base: &Arc<Vec<String>>,
    name: &str,
    requests: usize,
    concurrency: usize,
    make: F,
) where
    F: Fn(usize) -> (Method, String, String, StatusCode) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, base, make, next) = (
                client.clone(),
                Arc::clone(base),
                Arc::clone(&make),
                Arc::clone(&next),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return latencies;
                    }
                    let (method, path, body, expected) = make(i);
                    let sent = Instant::now();
                    let base = &base[i % base.len()];
                    let answer = client
                        .send(method, &format!("{base}{path}"), body)
                        .await
                        .unwrap();
                    latencies.push((sent.elapsed(), answer.status == expected));
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    let mut unexpected = 0;
    for worker in workers {
        for (latency, ok) in worker.await.unwrap() {
            latencies.push(latency);
            unexpected += usize::from(!ok);
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    println!(
        "{name:<34} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9}",
        requests as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(1.0),
        unexpected
    );
}
