//! `tollgate demo` end to end: the built binary, as a newcomer runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

fn tollgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn s3_demo_json_shows_the_naive_bug_and_the_guarded_guarantee() {
    let out = tollgate(&[
        "demo",
        "--json",
        "--requests",
        "60",
        "--llm-latency",
        "100ms",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["requests"], 60);
    let guarded = &json["guarded"];
    assert_eq!(
        guarded["status"],
        serde_json::json!({ "201": 1, "409": 59 })
    );
    assert_eq!(guarded["llm_calls"], 1);
    assert_eq!(guarded["reports_stored"], 1);
    assert_eq!(guarded["lock_errors"], 0);
    let naive = &json["naive"];
    assert!(naive["llm_calls"].as_u64().unwrap() > 1, "{naive}");
    // Each 201 stored its own report, and each of them paid.
    let created = naive["status"]["201"].as_u64().unwrap_or(0);
    assert_eq!(naive["reports_stored"].as_u64(), Some(created), "{naive}");
    assert!(naive["llm_calls"].as_u64().unwrap() >= created, "{naive}");
    let answered: u64 = naive["status"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(answered, 60);
}

#[test]
fn demo_table_is_printed_side_by_side() {
    let out = tollgate(&["demo", "--requests", "20", "--llm-latency", "50ms"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for row in [
        "naive",
        "guarded",
        "HTTP 201",
        "HTTP 409",
        "LLM calls (paid)",
        "reports stored",
        "DB lock errors",
    ] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
    assert!(
        stdout.contains(
            "guarded: exactly once — 1 × 201, 19 × 409, 1 LLM call, 1 report, 0 lock errors"
        ),
        "{stdout}"
    );
}

#[test]
fn demo_rejects_bad_arguments_with_exit_status_2() {
    for args in [
        &["demo", "--requests", "0"][..],
        &["demo", "--requests", "5001"],
        &["demo", "--pool", "x"],
    ] {
        let out = tollgate(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error"),
            "{args:?}"
        );
    }
}

#[test]
fn serve_requires_an_llm() {
    let out = tollgate(&["serve", "--db", "/nonexistent/x.db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--llm-url"));
}

#[test]
fn serve_answers_on_its_port_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("serve.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--fake-llm", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert_ne!(
            stderr.read_line(&mut line).unwrap(),
            0,
            "serve exited early"
        );
        if let Some(url) = line
            .trim()
            .strip_prefix("tollgate service listening on http://")
        {
            break url.to_owned();
        }
    };
    let mut conn = TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""status":"ok""#), "{answer}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(db.exists(), "the database file was created");
}
