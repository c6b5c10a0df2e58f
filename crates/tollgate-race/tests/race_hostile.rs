//! Servers that misbehave: garbage instead of HTTP, a head that never ends, a response cut
//! short. Each such request is counted as an error of the right kind, the others are
//! unaffected, and the run ends within its timeout.
#![allow(clippy::unwrap_used)]

use tollgate_testkit::http_servers as support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_race::{ErrorKind, RaceConfig, Report, SyncMode, run};

use support::Io;

/// What the server does with request `/<behaviour>/<index>`; request 0 misbehaves, the
/// others get `200 ok`.
async fn misbehave(mut io: Io) {
    let Some(seen) = support::read_request(&mut io).await else {
        return;
    };
    let mut parts = seen.path.trim_start_matches('/').split('/');
    let (behaviour, index) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if index != "0" {
        let _ = io
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await;
        return;
    }
    match behaviour {
        "garbage" => {
            let _ = io
                .write_all(b"\x00\xff\x16\x03\x01 not http at all\r\n\r\n")
                .await;
        }
        "endless-head" => {
            let _ = io.write_all(b"HTTP/1.1 200 OK\r\nX-Endless: ").await;
            let filler = [b'a'; 4096];
            while io.write_all(&filler).await.is_ok() {}
        }
        "stalled-head" => {
            let _ = io.write_all(b"HTTP/1.1 200 OK\r\nX-Stalled: ").await;
            std::future::pending::<()>().await;
        }
        "cut-body" => {
            let _ = io
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
                .await;
        }
        "cut-chunk" => {
            let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly";
            let _ = io.write_all(head).await;
        }
        _ => {}
    }
    let _ = io.shutdown().await;
}

const TIMEOUT: Duration = Duration::from_millis(500);

/// Races 4 requests at `/<behaviour>/{{i}}`; returns the report and how long the run took.
async fn race(behaviour: &str) -> (Report, Duration) {
    let (addr, _accept) = support::listen(support::LOOPBACK, None, misbehave).await;
    let mut config = RaceConfig::new(format!("http://{addr}/{behaviour}/{{{{i}}}}"));
    config.requests = 4;
    config.timeout = TIMEOUT;
    config.sync = SyncMode::LastByte;
    let started = Instant::now();
    let report = run(&config).await.unwrap();
    (report, started.elapsed())
}

/// One error of `kind` whose message contains `message`, and three `200`s.
fn assert_one_error(report: &Report, kind: ErrorKind, message: &str) {
    assert_eq!(report.status.get(&200), Some(&3), "{report:?}");
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.errors.get(&kind), Some(&1), "{:?}", report.errors);
    let sample = &report.per_trial[0].error_samples[&kind];
    assert!(sample.contains(message), "{sample}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_status_line_is_a_protocol_error() {
    let (report, _) = race("garbage").await;
    assert_one_error(&report, ErrorKind::Protocol, "bad status line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_never_ends_is_cut_at_64_kib() {
    let (report, took) = race("endless-head").await;
    assert_one_error(
        &report,
        ErrorKind::Protocol,
        "response head larger than 64 KiB",
    );
    assert!(
        took < TIMEOUT,
        "refused by size, not by the timeout: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_stalls_times_out_and_the_run_ends() {
    let (report, took) = race("stalled-head").await;
    assert_one_error(
        &report,
        ErrorKind::Timeout,
        "while waiting for the response",
    );
    // Connecting and reading are each bounded by the timeout.
    assert!(took < 2 * TIMEOUT + Duration::from_millis(500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_mid_body_is_a_reset() {
    let (report, _) = race("cut-body").await;
    assert_one_error(
        &report,
        ErrorKind::Reset,
        "closed in the middle of the body",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_mid_chunk_is_a_reset() {
    let (report, _) = race("cut-chunk").await;
    assert_one_error(
        &report,
        ErrorKind::Reset,
        "closed in the middle of the body",
    );
}

/// An HTTP/2 "server" that reads the client's preface and answers with a frame header
/// announcing a 16 MiB frame, far over the limit the client advertised.
async fn h2_garbage(mut io: Io) {
    let mut preface = [0u8; 24];
    if io.read_exact(&mut preface).await.is_ok() {
        let _ = io.write_all(b"\xff\xff\xff\x00\x00\x00\x00\x00\x00").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_garbage_fails_every_stream_with_a_protocol_error() {
    let (addr, _accept) = support::listen(support::LOOPBACK, None, h2_garbage).await;
    let mut config = RaceConfig::new(format!("http://{addr}/"));
    config.requests = 4;
    config.timeout = TIMEOUT;
    config.sync = SyncMode::SinglePacket;
    let report = run(&config).await.unwrap();
    assert!(report.status.is_empty());
    assert_eq!(
        report.errors.get(&ErrorKind::Protocol),
        Some(&4),
        "{:?}",
        report.errors
    );
    let sample = &report.per_trial[0].error_samples[&ErrorKind::Protocol];
    assert_eq!(sample, "HTTP/2: frame larger than the advertised maximum");
}
