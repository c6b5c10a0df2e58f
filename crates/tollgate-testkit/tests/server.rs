//! The throw-away PostgreSQL and Redis servers: free loopback ports, readiness, kill, pause,
//! resume, stop, restart, and cleanup on drop.
//!
//! Checks go through independent clients where it matters: `psql` run here directly, and raw
//! TCP (a PostgreSQL startup message, RESP commands), never through the code under test alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::env;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tollgate_testkit::server::{
    AppendFsync, PostgresOptions, PostgresServer, RedisOptions, RedisServer, ServerError,
};

/// How long a paused server is given to (wrongly) answer.
const SILENCE: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// Independent clients.

/// `psql` from PATH or the newest `/usr/lib/postgresql/*/bin`; never skipped silently.
fn psql_exe() -> PathBuf {
    let path = env::var_os("PATH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = env::split_paths(&path).map(|d| d.join("psql")).collect();
    let mut versioned: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.filter_map(Result::ok)
                .map(|d| d.path().join("bin/psql"))
                .collect()
        })
        .unwrap_or_default();
    versioned.sort();
    versioned.reverse();
    candidates.extend(versioned);
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .expect("psql not found: install it with `apt-get install postgresql-client`")
}

/// Runs a command to its end, killing it (and failing the test) after 30 s.
fn output_within_30s(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{cmd:?} did not finish within 30 s");
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// `psql -c sql` over TCP to 127.0.0.1:port as `postgres`; the output, or stderr as the error.
fn psql(port: u16, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(psql_exe());
    cmd.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
    ])
    .args([
        "-p",
        &port.to_string(),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        sql,
    ])
    .env("PGCONNECT_TIMEOUT", "5");
    let out = output_within_30s(cmd);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim_end().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Sends a PostgreSQL startup message and reports whether any byte comes back within `wait`.
fn postgres_answers_within(port: u16, wait: Duration) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, wait).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut body = 196_608_u32.to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0postgres\0database\0postgres\0\0");
    let mut message = u32::try_from(body.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    message.extend_from_slice(&body);
    stream.write_all(&message).unwrap();
    let mut first = [0_u8; 1];
    match stream.read(&mut first) {
        Ok(n) => n == 1,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            false
        }
        Err(e) => panic!("unexpected error while waiting for postgres: {e}"),
    }
}

/// One RESP command over a new connection: a line reply as is, a bulk reply as its content,
/// a nil bulk as `$-1`.
fn redis(port: u16, args: &[&str], wait: Duration) -> io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, wait)?;
    stream.set_read_timeout(Some(wait))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    (&stream).write_all(request.as_bytes())?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end().to_owned();
    match line.strip_prefix('$') {
        Some(len) if !len.starts_with('-') => {
            let mut body = vec![0_u8; len.parse::<usize>().unwrap() + 2];
            reader.read_exact(&mut body)?;
            body.truncate(body.len() - 2);
            Ok(String::from_utf8(body).unwrap())
        }
        _ => Ok(line),
    }
}

fn redis_ok(port: u16, args: &[&str]) -> String {
    redis(port, args, Duration::from_secs(5)).unwrap()
}

/// `CONFIG GET name` → the value (the reply is a two-element array; read it raw).
fn redis_config(port: u16, name: &str) -> String {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!(
        "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n${}\r\n{name}\r\n",
        name.len()
    );
    (&stream).write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(&stream);
    let mut lines = Vec::new();
    for _ in 0..5 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        lines.push(line.trim_end().to_owned());
    }
    assert_eq!(lines[0], "*2", "CONFIG GET {name}: {lines:?}");
    assert_eq!(lines[2], name);
    lines[4].clone()
}

// ---------------------------------------------------------------------------------------------
// Processes.

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// (pid, state) of `root` and every descendant of it (postgres backends run in sessions of
/// their own, so process groups would miss them).
fn tree(root: u32) -> Vec<(u32, char)> {
    let table: Vec<(u32, u32, char)> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some((pid, fields.get(1)?.parse().ok()?, fields[0].chars().next()?))
        })
        .collect();
    let mut found: Vec<(u32, char)> = table
        .iter()
        .filter(|(pid, _, _)| *pid == root)
        .map(|&(pid, _, state)| (pid, state))
        .collect();
    let mut next = 0;
    while next < found.len() {
        let parent = found[next].0;
        found.extend(
            table
                .iter()
                .filter(|(_, ppid, _)| *ppid == parent)
                .map(|&(pid, _, state)| (pid, state)),
        );
        next += 1;
    }
    found
}

fn log(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL.

#[test]
fn server_postgres_starts_on_a_free_loopback_port_and_accepts_connections() {
    let pg = PostgresServer::start().unwrap();
    let port = pg.port();
    assert_ne!(port, 5432);
    assert_ne!(port, 0);
    assert_eq!(
        pg.url(),
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    );
    assert_eq!(psql(port, "select 1").unwrap(), "1");
    assert_eq!(psql(port, "select current_user").unwrap(), "postgres");
    assert_eq!(psql(port, "show listen_addresses").unwrap(), "127.0.0.1");
    assert_eq!(psql(port, "show port").unwrap(), port.to_string());
    assert_eq!(psql(port, "show fsync").unwrap(), "on");
    assert_eq!(psql(port, "show max_connections").unwrap(), "200");
    let sockets = psql(port, "show unix_socket_directories").unwrap();
    assert_eq!(Path::new(&sockets), pg.dir().join("sockets"));
    assert_eq!(
        Path::new(&psql(port, "show data_directory").unwrap()),
        pg.data_dir()
    );
    // The helper answers the same way.
    assert_eq!(pg.psql("postgres", "select 40 + 2").unwrap(), "42");
    // Postgres refuses root: when the tests run as root, the server runs as `nobody`.
    let pid = pg.pid().unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uid: u32 = uid_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_ne!(uid, 0, "postgres runs as root: {uid_line}");
}

#[test]
fn server_postgres_fsync_off_is_opt_in() {
    let pg = PostgresOptions::new()
        .fsync(false)
        .max_connections(50)
        .setting("work_mem", "8MB")
        .start()
        .unwrap();
    assert_eq!(psql(pg.port(), "show fsync").unwrap(), "off");
    assert_eq!(psql(pg.port(), "show max_connections").unwrap(), "50");
    assert_eq!(psql(pg.port(), "show work_mem").unwrap(), "8MB");
}

#[test]
fn server_postgres_sigkill_then_restart_keeps_committed_data() {
    let mut pg = PostgresServer::start().unwrap();
    let port = pg.port();
    psql(port, "create table t (id int primary key, v text)").unwrap();
    psql(port, "insert into t values (1, 'committed')").unwrap();
    let pid = pg.pid().unwrap();
    let members = tree(pid);
    assert!(
        members.len() > 1,
        "postmaster and its children: {members:?}"
    );

    pg.kill().unwrap();
    assert_eq!(pg.pid(), None);
    for (member, _) in &members {
        assert!(
            !process_exists(*member),
            "process {member} survived the kill"
        );
    }
    let refused = psql(port, "select 1").unwrap_err();
    assert!(refused.contains("Connection refused"), "{refused}");

    pg.restart().unwrap();
    assert_eq!(pg.port(), port);
    assert_ne!(pg.pid(), Some(pid));
    assert_eq!(
        psql(port, "select v from t where id = 1").unwrap(),
        "committed"
    );
    let log = log(pg.log_path());
    assert!(
        log.contains("database system was not properly shut down; automatic recovery in progress"),
        "no WAL recovery in the log:\n{log}"
    );
}

#[test]
fn server_postgres_stop_then_restart_needs_no_recovery() {
    let mut pg = PostgresServer::start().unwrap();
    let port = pg.port();
    psql(
        port,
        "create table t (v text); insert into t values ('kept')",
    )
    .unwrap();
    let pid = pg.pid().unwrap();
    pg.stop().unwrap();
    assert_eq!(pg.pid(), None);
    assert!(!process_exists(pid));
    assert!(log(pg.log_path()).contains("database system is shut down"));

    pg.restart().unwrap();
    assert_eq!(psql(port, "select v from t").unwrap(), "kept");
    let log = log(pg.log_path());
    assert!(!log.contains("automatic recovery in progress"), "{log}");
    // A restart of a running server stops it gracefully first.
    let pid = pg.pid().unwrap();
    pg.restart().unwrap();
    assert!(!process_exists(pid));
    assert_eq!(psql(port, "select v from t").unwrap(), "kept");
}

#[test]
fn server_postgres_paused_server_does_not_answer_until_resumed() {
    let mut pg = PostgresServer::start().unwrap();
    let port = pg.port();
    assert!(postgres_answers_within(port, Duration::from_secs(5)));

    pg.pause().unwrap();
    assert!(pg.is_paused());
    let members = tree(pg.pid().unwrap());
    assert!(members.len() > 1);
    assert_eq!(
        members[0].1, 'T',
        "the postmaster is not stopped: {members:?}"
    );
    // Every backend is stopped, or dead and not yet reaped by the stopped postmaster (the one
    // that answered the probe above, say).
    assert!(
        members.iter().all(|(_, state)| matches!(state, 'T' | 'Z')),
        "not every process is stopped: {members:?}"
    );
    assert!(!postgres_answers_within(port, SILENCE));

    pg.resume().unwrap();
    assert!(!pg.is_paused());
    assert_eq!(psql(port, "select 1").unwrap(), "1");
    assert!(postgres_answers_within(port, Duration::from_secs(5)));
}

#[test]
fn server_postgres_create_database_makes_a_database_psql_can_use() {
    let pg = PostgresServer::start().unwrap();
    pg.create_database("once store").unwrap();
    assert_eq!(
        pg.psql("once store", "select current_database()").unwrap(),
        "once store"
    );
    assert_eq!(
        pg.database_url("once store"),
        format!("postgres://postgres@127.0.0.1:{}/once%20store", pg.port())
    );
    let err = pg.create_database("once store").unwrap_err();
    assert!(
        matches!(err, ServerError::Command { .. }),
        "a second CREATE DATABASE fails: {err:?}"
    );
    assert!(err.to_string().contains("already exists"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Redis.

#[test]
fn server_redis_starts_on_a_free_loopback_port_and_answers_ping() {
    let redis_server = RedisServer::start().unwrap();
    let port = redis_server.port();
    assert_ne!(port, 6379);
    assert_ne!(port, 0);
    assert_eq!(redis_server.url(), format!("redis://127.0.0.1:{port}"));
    assert_eq!(redis_ok(port, &["PING"]), "+PONG");
    assert_eq!(redis_config(port, "bind"), "127.0.0.1");
    assert_eq!(redis_config(port, "save"), "");
    assert_eq!(redis_config(port, "appendonly"), "no");
    assert_eq!(
        Path::new(&redis_config(port, "dir")),
        redis_server.dir().canonicalize().unwrap()
    );
    let info = redis_ok(port, &["INFO", "server"]);
    let pid = redis_server.pid().unwrap();
    assert!(info.contains(&format!("process_id:{pid}\r\n")), "{info}");
}

#[test]
fn server_redis_append_only_always_keeps_a_key_after_sigkill_and_restart() {
    let mut redis_server = RedisOptions::new()
        .append_only(AppendFsync::Always)
        .start()
        .unwrap();
    let port = redis_server.port();
    assert_eq!(redis_config(port, "appendonly"), "yes");
    assert_eq!(redis_config(port, "appendfsync"), "always");
    assert_eq!(redis_ok(port, &["SET", "k", "acknowledged"]), "+OK");
    let pid = redis_server.pid().unwrap();

    redis_server.kill().unwrap();
    assert!(!process_exists(pid));
    assert_eq!(redis_server.pid(), None);
    let refused = redis(port, &["PING"], Duration::from_secs(1)).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);

    redis_server.restart().unwrap();
    assert_eq!(redis_server.port(), port);
    assert_eq!(redis_ok(port, &["GET", "k"]), "acknowledged");
    assert_eq!(redis_ok(port, &["DBSIZE"]), ":1");
}

#[test]
fn server_redis_without_persistence_loses_a_key_after_sigkill_and_restart() {
    let mut redis_server = RedisServer::start().unwrap();
    let port = redis_server.port();
    assert_eq!(redis_ok(port, &["SET", "k", "volatile"]), "+OK");
    assert_eq!(redis_ok(port, &["GET", "k"]), "volatile");

    redis_server.kill().unwrap();
    redis_server.restart().unwrap();
    assert_eq!(redis_server.port(), port);
    assert_eq!(redis_ok(port, &["GET", "k"]), "$-1");
    assert_eq!(redis_ok(port, &["DBSIZE"]), ":0");
}

#[test]
fn server_redis_paused_server_does_not_answer_until_resumed() {
    let mut redis_server = RedisServer::start().unwrap();
    let port = redis_server.port();
    assert_eq!(redis_ok(port, &["SET", "k", "v"]), "+OK");

    redis_server.pause().unwrap();
    let pid = redis_server.pid().unwrap();
    assert!(tree(pid).iter().all(|(_, state)| *state == 'T'));
    let silent = redis(port, &["PING"], SILENCE).unwrap_err();
    assert!(
        matches!(
            silent.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{silent:?}"
    );

    redis_server.resume().unwrap();
    assert_eq!(redis_ok(port, &["PING"]), "+PONG");
    assert_eq!(redis_ok(port, &["GET", "k"]), "v");

    // A paused server can be killed, and restarted.
    redis_server.pause().unwrap();
    redis_server.kill().unwrap();
    assert!(!process_exists(pid));
    assert!(!redis_server.is_paused());
    redis_server.restart().unwrap();
    assert_eq!(redis_ok(port, &["PING"]), "+PONG");
}

// ---------------------------------------------------------------------------------------------
// Both.

#[tokio::test(flavor = "multi_thread")]
async fn server_two_servers_get_different_ports() {
    let pgs = [
        tokio::task::spawn_blocking(PostgresServer::start),
        tokio::task::spawn_blocking(PostgresServer::start),
    ];
    let redises = [
        tokio::task::spawn_blocking(RedisServer::start),
        tokio::task::spawn_blocking(RedisServer::start),
    ];
    let mut started_pgs = Vec::new();
    for pg in pgs {
        started_pgs.push(pg.await.unwrap().unwrap());
    }
    let mut started_redises = Vec::new();
    for redis_server in redises {
        started_redises.push(redis_server.await.unwrap().unwrap());
    }
    let mut ports: Vec<u16> = started_pgs.iter().map(PostgresServer::port).collect();
    ports.extend(started_redises.iter().map(RedisServer::port));
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "ports {ports:?}");
    assert!(
        !ports.contains(&5432) && !ports.contains(&6379),
        "{ports:?}"
    );
    assert_ne!(started_pgs[0].dir(), started_pgs[1].dir());
    // Each answers on its own port.
    for pg in &started_pgs {
        assert_eq!(psql(pg.port(), "show port").unwrap(), pg.port().to_string());
    }
    for redis_server in &started_redises {
        let info = redis_ok(redis_server.port(), &["INFO", "server"]);
        let pid = redis_server.pid().unwrap();
        assert!(info.contains(&format!("process_id:{pid}\r\n")));
    }
}

#[test]
fn server_drop_kills_the_process_and_removes_its_directory() {
    let pg = PostgresServer::start().unwrap();
    let pg_pid = pg.pid().unwrap();
    let pg_members = tree(pg_pid);
    assert!(pg_members.len() > 1, "{pg_members:?}");
    let pg_dir = pg.dir().to_path_buf();
    assert!(pg_dir.join("data/PG_VERSION").is_file());

    let redis_server = RedisServer::start().unwrap();
    let redis_pid = redis_server.pid().unwrap();
    let redis_dir = redis_server.dir().to_path_buf();
    assert!(redis_dir.is_dir());

    drop(pg);
    drop(redis_server);
    for (pid, _) in pg_members {
        assert!(
            !process_exists(pid),
            "postgres process {pid} outlived the drop"
        );
    }
    assert!(!process_exists(redis_pid));
    assert!(tree(pg_pid).is_empty() && tree(redis_pid).is_empty());
    assert!(!pg_dir.exists());
    assert!(!redis_dir.exists());
}

#[test]
fn server_drop_during_a_panic_kills_the_server() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = thread::spawn(move || {
        let pg = PostgresServer::start().unwrap();
        let redis_server = RedisServer::start().unwrap();
        tx.send((
            pg.pid().unwrap(),
            pg.dir().to_path_buf(),
            redis_server.pid().unwrap(),
            redis_server.dir().to_path_buf(),
        ))
        .unwrap();
        panic!("a failing test");
    })
    .join();
    assert!(outcome.is_err());
    let (pg_pid, pg_dir, redis_pid, redis_dir) = rx.recv().unwrap();
    assert!(tree(pg_pid).is_empty());
    assert!(!process_exists(pg_pid) && !process_exists(redis_pid));
    assert!(!pg_dir.exists() && !redis_dir.exists());
}

#[test]
fn server_missing_binary_error_says_what_to_install() {
    let err = PostgresOptions::new()
        .bin_dir("/nonexistent/postgresql/bin")
        .start()
        .unwrap_err();
    assert!(
        matches!(&err, ServerError::MissingBinary { binary, .. } if binary == "initdb"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "`initdb` not found (searched /nonexistent/postgresql/bin): \
         install it with `apt-get install postgresql`"
    );

    let err = RedisOptions::new()
        .binary("/nonexistent/bin/redis-server")
        .start()
        .unwrap_err();
    assert!(matches!(err, ServerError::MissingBinary { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "`/nonexistent/bin/redis-server` not found (searched that path): \
         install it with `apt-get install redis-server`"
    );

    let err = RedisOptions::new()
        .binary("no-such-redis-server")
        .start()
        .unwrap_err();
    assert!(
        err.to_string().contains("apt-get install redis-server"),
        "{err}"
    );
}
