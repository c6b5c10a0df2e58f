//! `--html FILE` end to end: the binary writes a page, headless Chromium renders it, and the
//! test checks what a person would see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tollgate-race/tests/support/mod.rs"]
mod support;

mod chromium;

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

/// Runs the binary off the runtime's worker threads, which serve the test servers.
async fn tollgate(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// A path for `name` under the target's temporary directory, kept after the test so that the
/// screenshot can be looked at.
fn output(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_race_page_shows_one_mark_per_request_and_the_violated_trials() {
    let server = support::racy().await;
    let page = output("race.html");
    let args = [
        "race", "-X", "POST", "-n", "20", "--trials", "3", "--expect", "201=1", "--expect",
        "409=19", "--json", "--html",
    ];
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args.push(page.display().to_string());
    let url = server.url("/reports/{{trial_uuid}}");
    args.push(url.clone());
    let out = tollgate(args).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let violations = report["violations"].as_u64().unwrap() as usize;

    let seen = chromium::render(&page, 2400);
    assert_eq!(seen.console, Vec::<String>::new(), "console messages");
    assert!(
        seen.dom.contains("data-rendered=\"ok\""),
        "the page's script did not finish"
    );
    assert!(seen.dom.contains("drawn: 3 timelines, 60 request marks"));
    assert_eq!(
        seen.dom
            .matches("<svg class=\"timeline\" data-requests=\"20\"")
            .count(),
        3
    );
    assert_eq!(seen.dom.matches("<g class=\"req\"").count(), 60);
    assert_eq!(
        seen.dom.matches("<tr class=\"violated\">").count(),
        violations
    );
    assert!(seen.dom.contains("&#39;http://127.0.0.1:") || seen.dom.contains("'http://127.0.0.1:"));
    assert!(
        seen.dom.contains("/reports/{{trial_uuid}}'"),
        "the exact command line"
    );
    assert!(chromium::is_png(&std::fs::read(&seen.screenshot).unwrap()));
    println!("screenshot: {}", seen.screenshot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_shows_both_sides_one_mark_per_request() {
    let page = output("demo.html");
    let args = [
        "demo",
        "-n",
        "20",
        "--llm-latency",
        "50ms",
        "--json",
        "--html",
    ];
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args.push(page.display().to_string());
    let out = tollgate(args).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let naive_created = report["naive"]["status"]["201"].as_u64().unwrap_or(0) as usize;

    let seen = chromium::render(&page, 1400);
    assert_eq!(seen.console, Vec::<String>::new(), "console messages");
    assert!(
        seen.dom.contains("data-rendered=\"ok\""),
        "the page's script did not finish"
    );
    assert!(seen.dom.contains("drawn: 2 timelines, 40 request marks"));
    assert_eq!(seen.dom.matches("<g class=\"req\"").count(), 40);
    // The guarded side answers 201 once and 409 to the 19 others.
    assert_eq!(
        seen.dom.matches("data-status=\"201\"").count(),
        naive_created + 1
    );
    assert!(
        seen.dom
            .contains("guarded: exactly once — 1 × 201, 19 × 409")
    );
    assert!(chromium::is_png(&std::fs::read(&seen.screenshot).unwrap()));
    println!("screenshot: {}", seen.screenshot.display());
}
