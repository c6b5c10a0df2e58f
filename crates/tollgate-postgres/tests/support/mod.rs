//! Shared by this crate's test binaries: one throw-away server per binary, a fresh schema
//! per test, stores on it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tollgate_postgres::deadpool_postgres::Pool;
use tollgate_postgres::{PinnedTime, PostgresStore, tokio_postgres};
use tollgate_testkit::server::{PostgresOptions, PostgresServer};

/// The bound on every store call in the tests: generous, a debug build on 2 shared cores.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The server of this test binary, started on first use (initdb costs seconds: one per
/// binary, a fresh schema per test). A static is never dropped, so a watchdog process kills
/// the server and removes its directory once this process has exited.
pub fn server() -> &'static PostgresServer {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = options().start().expect("start a throw-away postgres");
        reap_on_exit(&server);
        server
    })
}

/// The options of every throw-away server: fsync off (nothing here survives a machine
/// crash anyway), room for many pools.
pub fn options() -> PostgresOptions {
    PostgresOptions::new()
        .fsync(false)
        .max_connections(300)
        .setting("track_functions", "all")
}

/// Once this test process is gone, SIGKILL the postmaster (its backends notice and exit)
/// and remove the server's directory.
fn reap_on_exit(server: &PostgresServer) {
    let (Some(pg), me) = (server.pid(), std::process::id()) else {
        return;
    };
    let dir = server.dir().display().to_string();
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.2; done; kill -9 {pg} 2>/dev/null; \
         sleep 1; rm -rf '{dir}'"
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// A schema name no other test of this binary uses.
pub fn fresh_schema() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("t{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

/// The connection config of `server`'s database `postgres`.
pub fn config(server: &PostgresServer) -> tokio_postgres::Config {
    server.url().parse().unwrap()
}

/// A pool of `size` connections to `server`.
pub fn pool(server: &PostgresServer, size: usize) -> Pool {
    tollgate_postgres::pool(config(server), size, TIMEOUT).unwrap()
}

/// A store on `schema` of `server`, listening for settled keys, its time pinned when given.
pub async fn store(
    server: &PostgresServer,
    schema: &str,
    pinned: Option<&PinnedTime>,
) -> PostgresStore {
    let mut builder = PostgresStore::builder(pool(server, 8))
        .schema(schema)
        .timeout(TIMEOUT)
        .listen(config(server));
    if let Some(time) = pinned {
        builder = builder.pinned_time(time.clone());
    }
    builder.open().await.unwrap()
}

/// The server of this binary, reached from async code without blocking a runtime thread.
pub async fn shared_server() -> &'static PostgresServer {
    tokio::task::spawn_blocking(server).await.unwrap()
}

/// The locks of `schema` on the server at `url` (migrated on open), every call bounded by
/// `timeout`.
pub async fn locks(
    url: &str,
    schema: &str,
    timeout: Duration,
) -> tollgate_postgres::tollgate::lock::Locks<tollgate_postgres::PgLockStore> {
    let pool = tollgate_postgres::pool(url.parse().unwrap(), 4, timeout).unwrap();
    let store = PostgresStore::builder(pool)
        .schema(schema)
        .timeout(timeout)
        .open()
        .await
        .unwrap();
    tollgate_postgres::tollgate::lock::Locks::new(tollgate_postgres::PgLockStore::new(store))
}
