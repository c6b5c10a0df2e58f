//! A throw-away Redis server: `redis-server` on a free loopback port, its data in a temporary
//! directory.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rustix::process::Signal;
use tempfile::TempDir;

use super::ServerError;
use super::binary;
use super::port;
use super::process::{LaunchError, Readiness, Supervised, launch};

const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// When Redis fsyncs its append-only file (`appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendFsync {
    /// After every write, before the reply: an acknowledged write survives a SIGKILL and a crash.
    Always,
    /// Once a second.
    EverySec,
    /// When the operating system decides.
    No,
}

impl AppendFsync {
    fn as_str(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::EverySec => "everysec",
            AppendFsync::No => "no",
        }
    }
}

/// How a [`RedisServer`] is started. The defaults persist nothing (`--save ""`,
/// `--appendonly no`): a killed or restarted server comes back empty.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    binary: Option<PathBuf>,
    append_only: Option<AppendFsync>,
    settings: Vec<(String, String)>,
    ready_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions::new()
    }
}

impl RedisOptions {
    /// The defaults: `redis-server` from `PATH`, no persistence, 30 s to get ready.
    pub fn new() -> Self {
        RedisOptions {
            binary: None,
            append_only: None,
            settings: Vec::new(),
            ready_timeout: Duration::from_secs(30),
        }
    }

    /// The `redis-server` to run: a path, or a bare name looked up in `PATH`.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// `--appendonly yes --appendfsync <fsync>`; with [`AppendFsync::Always`], every
    /// acknowledged write survives [`RedisServer::kill`] and [`RedisServer::restart`].
    pub fn append_only(mut self, fsync: AppendFsync) -> Self {
        self.append_only = Some(fsync);
        self
    }

    /// Any other configuration directive, passed as `--name value`.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// How long a start (or restart, loading the append-only file included) may take before it
    /// fails (default 30 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Starts a server with these options: [`RedisServer::start_with`].
    pub fn start(self) -> Result<RedisServer, ServerError> {
        RedisServer::start_with(self)
    }
}

/// Everything needed to launch `redis-server` again on the same directory.
#[derive(Debug)]
struct Launcher {
    redis_server: PathBuf,
    options: RedisOptions,
    root: PathBuf,
    log: PathBuf,
}

/// A Redis server of its own for one test, on a free port of 127.0.0.1 only, its files in a
/// temporary directory.
///
/// Every method that waits is blocking, with a deadline; from async code that must keep other
/// tasks running meanwhile, call them in `tokio::task::spawn_blocking`. Dropping the server
/// SIGKILLs the server (and any child it forked), reaps it and removes the directory, also
/// when a test panics.
#[derive(Debug)]
pub struct RedisServer {
    // Declared before `dir`: the process dies before its directory is removed.
    process: Supervised,
    port: u16,
    launcher: Launcher,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server with the default [`RedisOptions`] (no persistence) and waits until it
    /// answers `PING`.
    pub fn start() -> Result<RedisServer, ServerError> {
        RedisServer::start_with(RedisOptions::new())
    }

    /// Starts `redis-server` on a free loopback port (another port is tried when the chosen one
    /// is taken meanwhile) and waits until it answers `PING` with `+PONG`.
    pub fn start_with(options: RedisOptions) -> Result<RedisServer, ServerError> {
        let redis_server = binary::redis_server(options.binary.as_deref())?;
        let dir = tempfile::Builder::new()
            .prefix("tollgate-redis-")
            .tempdir()
            .map_err(|e| ServerError::io("create a temporary directory", e))?;
        let launcher = Launcher {
            redis_server,
            options,
            root: dir.path().to_path_buf(),
            log: dir.path().join("redis.log"),
        };
        for _ in 0..port::TRIES {
            let port = port::free_loopback_port()?;
            match launcher.launch(port) {
                Ok(process) => {
                    return Ok(RedisServer {
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

    /// The TCP port on 127.0.0.1 (never 6379).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The pid of `redis-server`, until it is killed or stopped (or found exited).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Whether the server is paused ([`pause`](Self::pause)d and not resumed).
    pub fn is_paused(&self) -> bool {
        self.process.is_paused()
    }

    /// The temporary directory: the working directory of the server (append-only files) and
    /// its log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log (every start, appended).
    pub fn log_path(&self) -> &Path {
        &self.launcher.log
    }

    /// SIGKILL, then reap: a crash. Only writes already in an fsynced append-only file survive
    /// it. Does nothing when the server is not running.
    pub fn kill(&mut self) -> Result<(), ServerError> {
        self.process.kill()
    }

    /// SIGSTOP; returns once the server is stopped. The kernel still queues new connections,
    /// but nothing answers until [`resume`](Self::resume).
    pub fn pause(&mut self) -> Result<(), ServerError> {
        self.process.pause()
    }

    /// SIGCONT.
    pub fn resume(&mut self) -> Result<(), ServerError> {
        self.process.resume()
    }

    /// Graceful shutdown (SIGTERM: the append-only file, if any, is flushed); waits for the
    /// server to exit. Does nothing when the server is not running.
    pub fn stop(&mut self) -> Result<(), ServerError> {
        self.process.stop(Signal::TERM, STOP_TIMEOUT)
    }

    /// Starts the server again on the same port and directory (stopping it gracefully first if
    /// it runs) and waits until it answers `PING` (after loading its append-only file, if any).
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.stop()?;
        self.process = self.launcher.launch(self.port).map_err(|e| match e {
            LaunchError::PortInUse => ServerError::PortInUse {
                server: "redis-server",
                port: self.port,
            },
            LaunchError::Failed(e) => e,
        })?;
        Ok(())
    }
}

impl Launcher {
    fn launch(&self, port: u16) -> Result<Supervised, LaunchError> {
        let options = &self.options;
        let mut cmd = Command::new(&self.redis_server);
        cmd.current_dir(&self.root)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.root)
            .args(["--daemonize", "no", "--protected-mode", "yes", "--save", ""]);
        match options.append_only {
            None => cmd.args(["--appendonly", "no"]),
            Some(fsync) => cmd.args(["--appendonly", "yes", "--appendfsync", fsync.as_str()]),
        };
        for (name, value) in &options.settings {
            cmd.arg(format!("--{name}")).arg(value);
        }
        launch(
            "redis-server",
            cmd,
            &self.log,
            options.ready_timeout,
            |pid| {
                match command(port, &["PING"], PROBE_TIMEOUT) {
                    Ok(reply) if reply == "+PONG" => {}
                    _ => return Readiness::NotYet, // refused, or `-LOADING`
                }
                // Make sure the server that answers is ours and not one that holds the port.
                match command(port, &["INFO", "server"], PROBE_TIMEOUT) {
                    Ok(info)
                        if info
                            .lines()
                            .any(|l| l.trim() == format!("process_id:{pid}")) =>
                    {
                        Readiness::Ready
                    }
                    Ok(_) => Readiness::SomeoneElse,
                    Err(_) => Readiness::NotYet,
                }
            },
        )
    }
}

/// Sends one command over a new connection and returns the reply: a status, error or integer
/// line as is (`+PONG`), a bulk string as its content.
fn command(port: u16, args: &[&str], timeout: Duration) -> io::Result<String> {
    let stream =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    (&stream).write_all(request.as_bytes())?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']);
    // A status, error or integer line, or a nil bulk string (`$-1`): returned as is.
    let Some(len) = line.strip_prefix('$').filter(|len| !len.starts_with('-')) else {
        return Ok(line.to_owned());
    };
    let len: usize = len
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad bulk length"))?;
    let mut body = vec![0_u8; len + 2];
    reader.read_exact(&mut body)?;
    body.truncate(len);
    Ok(String::from_utf8_lossy(&body).into_owned())
}
