//! `--database` and `--once-store` URLs that cannot be used: one line on stderr naming the
//! option and the reason, exit status 2, no panic — and nothing half-created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use tollgate_testkit::server::PostgresServer;

/// Runs `tollgate ARGS…`; its exit status and stderr.
fn tollgate(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tollgate serve --listen 127.0.0.1:0 --llm-url … ARGS…` must fail at start with exit 2 and
/// exactly one line; returns it.
fn serve_refused(args: &[&str]) -> String {
    let mut all = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--llm-url",
        "http://127.0.0.1:9",
    ];
    all.extend_from_slice(args);
    let (code, stderr) = tollgate(&all);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.trim_end().to_owned()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn serve_with_a_malformed_database_url_exits_2_naming_the_option() {
    assert_eq!(
        serve_refused(&["--database", "mysql://app@db/app"]),
        "error: --database mysql://app@db/app: expected sqlite:PATH or postgres://USER@HOST:PORT/DB"
    );
    let line = serve_refused(&["--database", "postgres://app:secret@db:port/app"]);
    assert!(
        line.starts_with("error: --database postgres://app@db:port/app: not a PostgreSQL URL"),
        "{line}"
    );
    assert!(
        !line.contains("secret"),
        "the password is never printed: {line}"
    );
    assert_eq!(
        serve_refused(&["--database", "postgres:///app"]),
        "error: --database postgres:///app: the PostgreSQL URL names no host (postgres://USER@HOST:PORT/DB)"
    );
}

#[test]
fn serve_with_an_unreachable_database_exits_2_with_the_reason() {
    let port = closed_port();
    let url = format!("postgres://app@127.0.0.1:{port}/app");
    let line = serve_refused(&["--database", &url]);
    assert!(
        line.starts_with(&format!("error: --database {url}: ")),
        "{line}"
    );
    assert!(line.to_lowercase().contains("refused"), "{line}");
}

#[test]
fn serve_with_an_unauthorised_database_user_exits_2_and_creates_nothing() {
    let server = PostgresServer::start().unwrap();
    server
        .psql("postgres", "CREATE ROLE visitor LOGIN")
        .unwrap();
    let url = server.url().replace("postgres@", "visitor@");
    let line = serve_refused(&["--database", &url]);
    assert!(
        line.starts_with(&format!("error: --database {url}: ")),
        "{line}"
    );
    assert!(line.contains("permission denied"), "{line}");
    let schemas =
        "SELECT count(*) FROM pg_namespace WHERE nspname IN ('tollgate', 'tollgate_demo')";
    assert_eq!(server.psql("postgres", schemas).unwrap(), "0");

    // A user that does not exist at all.
    let url = server.url().replace("postgres@", "nobody_here@");
    let line = serve_refused(&["--database", &url]);
    assert!(line.contains("nobody_here"), "{line}");
    assert_eq!(server.psql("postgres", schemas).unwrap(), "0");
}

#[test]
fn serve_with_a_malformed_or_unreachable_once_store_exits_2_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let db = db.to_str().unwrap();
    assert_eq!(
        serve_refused(&["--db", db, "--once-store", "http://cache:6379"]),
        "error: --once-store http://cache:6379: expected redis://HOST:PORT"
    );
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let line = serve_refused(&["--db", db, "--once-store", &url]);
    assert!(
        line.starts_with(&format!("error: --once-store {url}: ")),
        "{line}"
    );
    let line = serve_refused(&[
        "--db",
        db,
        "--once-store",
        "redis://:hunter2@127.0.0.1:notaport",
    ]);
    assert!(
        line.starts_with("error: --once-store redis://@127.0.0.1:notaport: "),
        "{line}"
    );
    assert!(!line.contains("hunter2"), "{line}");
}

#[test]
fn serve_refuses_a_redis_once_store_that_would_lose_acknowledged_claims() {
    let redis = tollgate_testkit::server::RedisServer::start().unwrap(); // no appendonly
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let url = redis.url();
    let line = serve_refused(&["--db", db.to_str().unwrap(), "--once-store", &url]);
    assert!(
        line.starts_with(&format!("error: --once-store {url}: ")),
        "{line}"
    );
    assert!(line.contains("appendfsync always"), "{line}");
}

#[test]
fn demo_with_a_malformed_database_url_exits_2_naming_the_option() {
    let (code, stderr) = tollgate(&["demo", "--database", "oracle://x"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr.trim_end(),
        "error: --database oracle://x: expected sqlite:PATH or postgres://USER@HOST:PORT/DB"
    );
}
