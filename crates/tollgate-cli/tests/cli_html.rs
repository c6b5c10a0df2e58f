//! `--html FILE` end to end: the binary writes a page, headless Chromium renders it, and the
//! test checks what a person would see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_testkit::http_servers as support;

mod chromium;
mod run;

use std::path::PathBuf;

use run::tollgate;
use serde_json::Value;

/// A path for `name` under the target's temporary directory, kept after the test so that the
/// screenshot can be looked at.
fn output(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The page's script ran to its end and counted `timelines` timelines and `marks` marks.
fn assert_drawn(rendered: &chromium::Rendered, timelines: usize, marks: usize) {
    assert_eq!(rendered.console, Vec::<String>::new(), "console messages");
    let dom = &rendered.dom;
    assert!(
        dom.contains("data-rendered=\"ok\""),
        "the script did not finish"
    );
    let check = format!("drawn: {timelines} timelines, {marks} request marks");
    assert!(dom.contains(&check), "{check}");
    assert_eq!(dom.matches("<g class=\"req\"").count(), marks);
    let png = std::fs::read(&rendered.screenshot).unwrap();
    assert!(chromium::is_png(&png), "{}", rendered.screenshot.display());
    println!("screenshot: {}", rendered.screenshot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_race_page_shows_one_mark_per_request_and_the_violated_trials() {
    let server = support::racy(20).await;
    let page = output("race.html");
    let (html, url) = (page.display().to_string(), server.url("/r/{{trial_uuid}}"));
    let out = tollgate(&[
        "race", "-X", "POST", "-n", "20", "--trials", "3", "--expect", "201=1", "--expect",
        "409=19", "--json", "--html", &html, &url,
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let violations = report["violations"].as_u64().unwrap() as usize;
    assert_eq!(violations, 3, "the racy server violates every trial");

    let seen = chromium::render(&page, 2400);
    assert_drawn(&seen, 3, 60);
    let timelines = seen
        .dom
        .matches("<svg class=\"timeline\" data-requests=\"20\"");
    assert_eq!(timelines.count(), 3);
    let violated = seen.dom.matches("<tr class=\"violated\">").count();
    assert_eq!(violated, violations);
    let command = format!("--json --html {html} '{url}'</pre>");
    assert!(seen.dom.contains(&command), "the exact command line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_shows_both_sides_one_mark_per_request() {
    let page = output("demo.html");
    let html = page.display().to_string();
    let out = tollgate(&[
        "demo",
        "-n",
        "20",
        "--llm-latency",
        "50ms",
        "--json",
        "--html",
        &html,
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let naive_created = report["naive"]["status"]["201"].as_u64().unwrap_or(0) as usize;

    let seen = chromium::render(&page, 1400);
    assert_drawn(&seen, 2, 40);
    // The guarded side answers 201 once and 409 to the 19 others.
    let created = seen.dom.matches("data-status=\"201\"").count();
    assert_eq!(created, naive_created + 1);
    assert!(
        seen.dom
            .contains("guarded: exactly once — 1 × 201, 19 × 409")
    );
}
