//! A throw-away PostgreSQL server: `initdb` into a temporary directory, then `postgres` on a
//! free loopback port.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rustix::process::Signal;
use tempfile::TempDir;

use super::ServerError;
use super::binary::{self, INSTALL_POSTGRES, INSTALL_PSQL};
use super::port;
use super::process::{LaunchError, Readiness, Supervised, launch, run_bounded};

/// The superuser `initdb` creates, and the user of [`PostgresServer::url`].
const SUPERUSER: &str = "postgres";

/// The user postgres runs as when the tests run as root (postgres refuses to run as root).
const UNPRIVILEGED_USER: &str = "nobody";

const INITDB_TIMEOUT: Duration = Duration::from_secs(120);
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How a [`PostgresServer`] is started. The defaults keep `fsync` on: a SIGKILLed server loses
/// no committed transaction.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    bin_dir: Option<PathBuf>,
    fsync: bool,
    max_connections: u32,
    settings: Vec<(String, String)>,
    ready_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions::new()
    }
}

impl PostgresOptions {
    /// The defaults: binaries from `PATH` or `/usr/lib/postgresql/*/bin`, `fsync=on`,
    /// `max_connections=200`, 60 s to get ready.
    pub fn new() -> Self {
        PostgresOptions {
            bin_dir: None,
            fsync: true,
            max_connections: 200,
            settings: Vec::new(),
            ready_timeout: Duration::from_secs(60),
        }
    }

    /// Takes `initdb`, `postgres` and `psql` from this directory only.
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// `fsync=off` (and `initdb --no-sync`) when `false`: faster, but a crash of the machine may
    /// lose committed data. Opt-in only; the default is on.
    pub fn fsync(mut self, on: bool) -> Self {
        self.fsync = on;
        self
    }

    /// `max_connections` (default 200).
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections;
        self
    }

    /// Any other server setting, passed as `-c name=value`.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// How long a start (or restart, recovery included) may take before it fails (default 60 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Starts a server with these options: [`PostgresServer::start_with`].
    pub fn start(self) -> Result<PostgresServer, ServerError> {
        PostgresServer::start_with(self)
    }
}

/// Everything needed to launch `postgres` again on the same data directory.
#[derive(Debug)]
struct Launcher {
    postgres: PathBuf,
    options: PostgresOptions,
    run_as: Option<(u32, u32)>,
    root: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
    log: PathBuf,
}

/// A PostgreSQL server of its own for one test: a fresh cluster in a temporary directory,
/// listening on a free port of 127.0.0.1 only, superuser `postgres` with trust authentication.
///
/// Every method that waits is blocking, with a deadline; from async code that must keep other
/// tasks running meanwhile, call them in `tokio::task::spawn_blocking`. Dropping the server
/// SIGKILLs the postmaster and all its backends, reaps them, and removes the
/// directory, also when a test panics.
#[derive(Debug)]
pub struct PostgresServer {
    // Declared before `dir`: the processes die before their directory is removed.
    process: Supervised,
    port: u16,
    launcher: Launcher,
    dir: TempDir,
}

impl PostgresServer {
    /// Starts a server with the default [`PostgresOptions`] and waits until it accepts
    /// connections.
    pub fn start() -> Result<PostgresServer, ServerError> {
        PostgresServer::start_with(PostgresOptions::new())
    }

    /// `initdb` into a new temporary directory, then `postgres` on a free loopback port (another
    /// port is tried when the chosen one is taken meanwhile); returns once it accepts
    /// connections. Run as root, both run as user `nobody`.
    pub fn start_with(options: PostgresOptions) -> Result<PostgresServer, ServerError> {
        let bin_dir = options.bin_dir.as_deref();
        let initdb = binary::postgres_tool("initdb", bin_dir, INSTALL_POSTGRES)?;
        let postgres = binary::postgres_tool("postgres", bin_dir, INSTALL_POSTGRES)?;
        let run_as = unprivileged_user_if_root()?;
        let dir = tempfile::Builder::new()
            .prefix("tollgate-postgres-")
            .tempdir()
            .map_err(|e| ServerError::io("create a temporary directory", e))?;
        let root = dir.path().to_path_buf();
        let sockets = root.join("sockets");
        fs::create_dir(&sockets)
            .map_err(|e| ServerError::io(format!("create {}", sockets.display()), e))?;
        if let Some((uid, gid)) = run_as {
            for path in [&root, &sockets] {
                chown(path, Some(uid), Some(gid)).map_err(|e| {
                    ServerError::io(format!("give {} to {UNPRIVILEGED_USER}", path.display()), e)
                })?;
            }
        }
        let launcher = Launcher {
            postgres,
            run_as,
            data: root.join("data"),
            log: root.join("postgres.log"),
            root,
            sockets,
            options,
        };
        launcher.initdb(&initdb)?;
        for _ in 0..port::TRIES {
            let port = port::free_loopback_port()?;
            match launcher.launch(port) {
                Ok(process) => {
                    return Ok(PostgresServer {
                        process,
                        port,
                        launcher,
                        dir,
                    });
                }
                Err(LaunchError::PortInUse) => continue,
                Err(LaunchError::Failed(e)) => return Err(e),
            }
        }
        Err(ServerError::NoFreePort { tries: port::TRIES })
    }

    /// The TCP port on 127.0.0.1 (never 5432).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of database `name` on this server, `postgres://postgres@127.0.0.1:PORT/NAME`
    /// (`name` percent-encoded).
    pub fn database_url(&self, name: &str) -> String {
        let mut url = format!("postgres://{SUPERUSER}@127.0.0.1:{}/", self.port);
        for byte in name.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                url.push(char::from(byte));
            } else {
                let _ = write!(url, "%{byte:02X}");
            }
        }
        url
    }

    /// The pid of the postmaster, until it is killed or stopped (or found exited).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Whether the server is paused ([`pause`](Self::pause)d and not resumed).
    pub fn is_paused(&self) -> bool {
        self.process.is_paused()
    }

    /// The temporary directory holding the data directory, the socket directory and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.launcher.data
    }

    /// The server log (standard output and error of every start, appended).
    pub fn log_path(&self) -> &Path {
        &self.launcher.log
    }

    /// Runs `sql` with `psql` as `postgres` in `database` (`ON_ERROR_STOP`, unaligned, tuples
    /// only) and returns what it printed, without the final newline: `select 1` gives `"1"`.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, ServerError> {
        let psql = binary::postgres_tool(
            "psql",
            self.launcher.options.bin_dir.as_deref(),
            INSTALL_PSQL,
        )?;
        let mut cmd = Command::new(psql);
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
            &self.port.to_string(),
            "-U",
            SUPERUSER,
            "-d",
            database,
        ])
        .args(["-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS");
        let out = run_bounded(cmd, "psql", PSQL_TIMEOUT)?.success("psql")?;
        Ok(out.strip_suffix('\n').unwrap_or(&out).to_owned())
    }

    /// `CREATE DATABASE "name"` (the name quoted as an identifier).
    pub fn create_database(&self, name: &str) -> Result<(), ServerError> {
        let quoted = name.replace('"', "\"\"");
        self.psql("postgres", &format!("CREATE DATABASE \"{quoted}\""))
            .map(drop)
    }

    /// SIGKILL to the postmaster and all its backends at once, then reaps them: a crash.
    /// Committed transactions survive it ([`restart`](Self::restart) replays the WAL). Does
    /// nothing when the server is not running.
    pub fn kill(&mut self) -> Result<(), ServerError> {
        self.process.kill()
    }

    /// SIGSTOP to the postmaster and all its backends; returns once all are stopped. The
    /// kernel still queues new connections, but nothing answers until [`resume`](Self::resume).
    pub fn pause(&mut self) -> Result<(), ServerError> {
        self.process.pause()
    }

    /// SIGCONT to the postmaster and all its backends.
    pub fn resume(&mut self) -> Result<(), ServerError> {
        self.process.resume()
    }

    /// Fast shutdown (SIGINT: open transactions roll back, a checkpoint is written); waits for
    /// the postmaster to exit. Does nothing when the server is not running.
    pub fn stop(&mut self) -> Result<(), ServerError> {
        self.process.stop(Signal::INT, STOP_TIMEOUT)
    }

    /// Starts the server again on the same port and data directory (stopping it gracefully
    /// first if it runs) and waits until it accepts connections; after a
    /// [`kill`](Self::kill) that includes the recovery from the WAL.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.stop()?;
        self.process = self.launcher.launch(self.port).map_err(|e| match e {
            LaunchError::PortInUse => ServerError::PortInUse {
                server: "postgres",
                port: self.port,
            },
            LaunchError::Failed(e) => e,
        })?;
        Ok(())
    }
}

impl Launcher {
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn initdb(&self, initdb: &Path) -> Result<(), ServerError> {
        let mut cmd = self.command(initdb);
        cmd.arg("-D").arg(&self.data).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]);
        if !self.options.fsync {
            cmd.arg("--no-sync");
        }
        run_bounded(cmd, "initdb", INITDB_TIMEOUT)?
            .success("initdb")
            .map(drop)
    }

    fn launch(&self, port: u16) -> Result<Supervised, LaunchError> {
        let options = &self.options;
        let mut cmd = self.command(&self.postgres);
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-p", &port.to_string()]);
        let mut settings = vec![
            ("listen_addresses".to_owned(), "127.0.0.1".to_owned()),
            (
                "unix_socket_directories".to_owned(),
                self.sockets.display().to_string(),
            ),
            (
                "max_connections".to_owned(),
                options.max_connections.to_string(),
            ),
            (
                "fsync".to_owned(),
                if options.fsync { "on" } else { "off" }.to_owned(),
            ),
        ];
        settings.extend(options.settings.iter().cloned());
        for (name, value) in settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        launch("postgres", cmd, &self.log, options.ready_timeout, |pid| {
            // The postmaster marks its pid file `ready` once it accepts connections (after any
            // recovery); the pid check ignores the stale file of a killed predecessor.
            if postmaster_status(&self.data, pid).as_deref() != Some("ready") {
                return Readiness::NotYet;
            }
            match startup_probe(port, PROBE_TIMEOUT) {
                Ok(Ok(())) => Readiness::Ready,
                _ => Readiness::NotYet,
            }
        })
    }
}

/// The status line of `postmaster.pid` (`starting`, `ready`, `stopping`) when the file is the
/// one of process `pid`.
fn postmaster_status(data: &Path, pid: u32) -> Option<String> {
    let text = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let file_pid: u32 = lines.first()?.trim().parse().ok()?;
    (file_pid == pid).then(|| lines.get(7).map(|status| status.trim().to_owned()))?
}

/// A protocol-3 startup as `postgres` to database `postgres` over TCP: `Ok(Ok(()))` once the
/// server says ReadyForQuery, `Ok(Err(message))` when it answers with an error (`the database
/// system is starting up`).
fn startup_probe(port: u16, timeout: Duration) -> io::Result<Result<(), String>> {
    let mut stream =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut body = 196_608_u32.to_be_bytes().to_vec(); // protocol 3.0
    for text in ["user", SUPERUSER, "database", "postgres", ""] {
        body.extend_from_slice(text.as_bytes());
        body.push(0);
    }
    let len = u32::try_from(body.len() + 4).map_err(io::Error::other)?;
    let mut message = len.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    stream.write_all(&message)?;
    loop {
        let mut head = [0_u8; 5];
        stream.read_exact(&mut head)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if !(4..=1 << 20).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad message length",
            ));
        }
        let mut payload = vec![0_u8; len - 4];
        stream.read_exact(&mut payload)?;
        match head[0] {
            b'R' if payload.get(..4) != Some(&[0, 0, 0, 0]) => {
                return Ok(Err("the server asks for a password".to_owned()));
            }
            b'E' => return Ok(Err(error_message(&payload))),
            b'Z' => {
                let _ = stream.write_all(&[b'X', 0, 0, 0, 4]); // Terminate
                return Ok(Ok(()));
            }
            _ => {} // AuthenticationOk, ParameterStatus, BackendKeyData, notices
        }
    }
}

/// The `M` (message) field of an ErrorResponse.
fn error_message(payload: &[u8]) -> String {
    payload
        .split(|&b| b == 0)
        .find_map(|field| field.strip_prefix(b"M"))
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_else(|| "error without a message".to_owned())
}

/// `Some((uid, gid))` of `nobody` when this process runs as root, `None` otherwise.
fn unprivileged_user_if_root() -> Result<Option<(u32, u32)>, ServerError> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.first() != Some(&UNPRIVILEGED_USER) {
                return None;
            }
            Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
        })
        .map(Some)
        .ok_or(ServerError::NoUnprivilegedUser {
            user: UNPRIVILEGED_USER,
        })
}
