//! A server process and its descendants: signals go to the whole process tree (a postgres
//! postmaster and its backends, which each run in a session of their own, stop, continue and
//! die together), readiness is polled against a deadline, and every process is reaped.
//!
//! A tree is frozen top-down before it is killed: once a parent is stopped it can neither fork
//! nor reap, so the pids of its children stay theirs until they are SIGKILLed and reaped here.
//! The test process makes itself a child subreaper (Linux), so that the killed children are
//! re-parented to it rather than left as zombies of an init that may not reap them.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{
    Pid, Signal, WaitId, WaitIdOptions, WaitOptions, kill_process, waitid, waitpid,
};

use super::ServerError;

/// The interval between two readiness (or state) checks.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// How long a SIGSTOP may take to stop every process of a tree, and how long the processes of a
/// killed tree may take to die.
pub(crate) const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The log lines quoted in an error.
const LOG_TAIL_LINES: usize = 40;

fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Best effort: without it, orphaned server children become zombies of init (they are
        // dead all the same, SIGKILL having reached the whole tree).
        #[cfg(target_os = "linux")]
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    });
}

/// Polls `done` every [`POLL`] until it returns true (then `true`) or `timeout` passes (`false`).
pub(crate) fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// A running server process (and, through `/proc`, its descendants).
#[derive(Debug)]
pub(crate) struct Supervised {
    server: &'static str,
    child: Option<Child>,
    paused: bool,
    log: PathBuf,
    log_offset: u64,
}

/// Why [`launch`] did not give a ready server.
#[derive(Debug)]
pub(crate) enum LaunchError {
    /// The port was taken by another process (the server said so, or someone else answered).
    PortInUse,
    /// Anything else.
    Failed(ServerError),
}

/// What a readiness check saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// The server answers.
    Ready,
    /// Not yet.
    NotYet,
    /// Another process answers on the port.
    SomeoneElse,
}

/// Spawns `cmd` (its output appended to `log`) and polls `ready` with the server's pid until it
/// says [`Readiness::Ready`], the server exits, or `timeout` passes (the server is then killed).
pub(crate) fn launch(
    server: &'static str,
    cmd: Command,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut(u32) -> Readiness,
) -> Result<Supervised, LaunchError> {
    let (mut process, pid) = Supervised::spawn(server, cmd, log).map_err(LaunchError::Failed)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = process.poll_exit().map_err(LaunchError::Failed)? {
            let log = process.log_tail();
            if log.contains("Address already in use") {
                return Err(LaunchError::PortInUse);
            }
            return Err(LaunchError::Failed(ServerError::Exited {
                server,
                status,
                log,
            }));
        }
        match ready(pid) {
            Readiness::Ready => return Ok(process),
            Readiness::SomeoneElse => {
                process.kill().map_err(LaunchError::Failed)?;
                return Err(LaunchError::PortInUse);
            }
            Readiness::NotYet => {}
        }
        if Instant::now() >= deadline {
            let log = process.log_tail();
            process.kill().map_err(LaunchError::Failed)?;
            return Err(LaunchError::Failed(ServerError::NotReady {
                server,
                waited: timeout,
                log,
            }));
        }
        thread::sleep(POLL);
    }
}

impl Supervised {
    /// Spawns `cmd`; returns it with its pid.
    fn spawn(
        server: &'static str,
        mut cmd: Command,
        log: &Path,
    ) -> Result<(Self, u32), ServerError> {
        become_subreaper();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| ServerError::io(format!("open the log {}", log.display()), e))?;
        let log_offset = out
            .metadata()
            .map_err(|e| ServerError::io(format!("read the size of {}", log.display()), e))?
            .len();
        let err = out
            .try_clone()
            .map_err(|e| ServerError::io("duplicate the log file handle", e))?;
        // The server stays in the test's process group: a Ctrl-C in the terminal reaches it too
        // (both servers shut down on SIGINT) when the test process dies without dropping it.
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| ServerError::io(format!("spawn {server}"), e))?;
        let pid = child.id();
        let process = Supervised {
            server,
            child: Some(child),
            paused: false,
            log: log.to_path_buf(),
            log_offset,
        };
        Ok((process, pid))
    }

    /// The pid of the server (the root of its tree), while it has not been reaped.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server was paused (SIGSTOP) and not resumed since.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// The last lines the server wrote to its log since this process was spawned.
    pub(crate) fn log_tail(&self) -> String {
        let mut text = Vec::new();
        let read = fs::File::open(&self.log).and_then(|mut file| {
            file.seek(SeekFrom::Start(self.log_offset))?;
            file.read_to_end(&mut text)
        });
        if let Err(e) = read {
            return format!("(could not read {}: {e})", self.log.display());
        }
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// The server's pid while it has not exited; `None` once it has (it is then reaped).
    fn live_pid(&mut self) -> Result<Option<Pid>, ServerError> {
        if self.poll_exit()?.is_some() {
            return Ok(None);
        }
        Ok(self.child.as_ref().map(Pid::from_child))
    }

    /// `Some(status)` when the server has exited (it and its tree are then reaped), `None` while
    /// it runs or when there is no process.
    pub(crate) fn poll_exit(&mut self) -> Result<Option<ExitStatus>, ServerError> {
        let Some(child) = &self.child else {
            return Ok(None);
        };
        let pid = Pid::from_child(child);
        // WNOWAIT: look without reaping, so that the pid stays the server's until `finish`.
        let exited = waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG,
        )
        .map_err(|e| ServerError::io(format!("check whether {} exited", self.server), e.into()))?;
        if exited.is_some() {
            self.finish().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Freezes the tree, SIGKILLs every process of it, then reaps the server and its children
    /// (re-parented to us).
    fn finish(&mut self) -> Result<ExitStatus, ServerError> {
        let Some(mut child) = self.child.take() else {
            return Err(ServerError::NotRunning {
                server: self.server,
                action: "reap",
            });
        };
        self.paused = false;
        let leader = Pid::from_child(&child);
        // Best effort: a process in uninterruptible sleep may not stop in time; it is killed
        // all the same and dies when it wakes.
        let (tree, _) = freeze(leader, SIGNAL_TIMEOUT);
        for &pid in tree.iter().rev() {
            match kill_process(pid, Signal::KILL) {
                Ok(()) | Err(Errno::SRCH) => {}
                // Without the leader's death, waiting for it would never end.
                Err(e) if pid == leader => {
                    return Err(signal_error(self.server, "SIGKILL", pid, e));
                }
                Err(_) => {}
            }
        }
        let status = child
            .wait()
            .map_err(|e| ServerError::io(format!("reap {}", self.server), e))?;
        reap(&tree[1..]);
        Ok(status)
    }

    /// SIGKILL to the whole tree, then reap. Does nothing when no process runs.
    pub(crate) fn kill(&mut self) -> Result<(), ServerError> {
        if self.child.is_some() {
            self.finish()?;
        }
        Ok(())
    }

    /// SIGSTOP to the whole tree; returns once every process of it is stopped.
    pub(crate) fn pause(&mut self) -> Result<(), ServerError> {
        let Some(leader) = self.live_pid()? else {
            return Err(ServerError::NotRunning {
                server: self.server,
                action: "pause",
            });
        };
        self.paused = true;
        let (_, stopped) = freeze(leader, SIGNAL_TIMEOUT);
        if stopped {
            Ok(())
        } else {
            Err(ServerError::Timeout {
                action: format!("stopping every process of {} with SIGSTOP", self.server),
                waited: SIGNAL_TIMEOUT,
            })
        }
    }

    /// SIGCONT to the whole tree (a no-op for processes that are not stopped).
    pub(crate) fn resume(&mut self) -> Result<(), ServerError> {
        let Some(leader) = self.live_pid()? else {
            return Err(ServerError::NotRunning {
                server: self.server,
                action: "resume",
            });
        };
        continue_tree(leader).map_err(|e| signal_error(self.server, "SIGCONT", leader, e))?;
        self.paused = false;
        Ok(())
    }

    /// Graceful stop: SIGCONT to the tree (a paused server could not shut down), `signal` to
    /// the server, then waits up to `timeout` for it to exit. Past the deadline the tree is
    /// killed and a [`ServerError::Timeout`] returned. Does nothing when no process runs.
    pub(crate) fn stop(&mut self, signal: Signal, timeout: Duration) -> Result<(), ServerError> {
        let Some(leader) = self.live_pid()? else {
            return Ok(());
        };
        continue_tree(leader).map_err(|e| signal_error(self.server, "SIGCONT", leader, e))?;
        self.paused = false;
        kill_process(leader, signal)
            .map_err(|e| signal_error(self.server, "a stop signal", leader, e))?;
        let mut failure = None;
        let exited = poll_until(timeout, || match self.poll_exit() {
            Ok(status) => status.is_some(),
            Err(e) => {
                failure = Some(e);
                true
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        if exited {
            return Ok(());
        }
        self.kill()?;
        Err(ServerError::Timeout {
            action: format!("graceful stop of {}", self.server),
            waited: timeout,
        })
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

fn signal_error(server: &str, signal: &str, pid: Pid, errno: Errno) -> ServerError {
    ServerError::io(
        format!("send {signal} to {server} (pid {})", pid.as_raw_pid()),
        errno.into(),
    )
}

/// One line of `/proc/<pid>/stat`: pid, parent pid, state letter (`R`, `S`, `T`, `Z`, ...).
#[derive(Debug, Clone, Copy)]
struct ProcStat {
    pid: i32,
    ppid: i32,
    state: char,
}

fn proc_stat(pid: i32) -> Option<ProcStat> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcStat { pid, ppid, state })
}

fn proc_table() -> Vec<ProcStat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter_map(proc_stat)
        .collect()
}

/// Stopped, or already dead: either way it neither forks nor reaps any more.
fn is_still(pid: Pid) -> bool {
    proc_stat(pid.as_raw_pid()).is_none_or(|s| matches!(s.state, 'T' | 't' | 'Z' | 'X'))
}

/// SIGSTOPs `leader`, waits until it is stopped, then does the same for its children, their
/// children and so on. Returns every process of the tree, parents before children, and whether
/// all of them stopped before `timeout`.
fn freeze(leader: Pid, timeout: Duration) -> (Vec<Pid>, bool) {
    let deadline = Instant::now() + timeout;
    let mut tree = Vec::new();
    let mut all_stopped = true;
    let mut level = vec![leader];
    while !level.is_empty() {
        for &pid in &level {
            let _ = kill_process(pid, Signal::STOP);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        all_stopped &= poll_until(left, || level.iter().all(|&pid| is_still(pid)));
        let parents: Vec<i32> = level.iter().map(|pid| pid.as_raw_pid()).collect();
        tree.append(&mut level);
        level = proc_table()
            .into_iter()
            .filter(|s| parents.contains(&s.ppid))
            .filter_map(|s| Pid::from_raw(s.pid))
            .filter(|pid| !tree.contains(pid))
            .collect();
    }
    (tree, all_stopped)
}

/// SIGCONT to `leader`'s descendants, the deepest first, then to `leader`.
fn continue_tree(leader: Pid) -> Result<(), Errno> {
    let table = proc_table();
    let mut tree = vec![leader];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next].as_raw_pid();
        tree.extend(
            table
                .iter()
                .filter(|s| s.ppid == parent)
                .filter_map(|s| Pid::from_raw(s.pid)),
        );
        next += 1;
    }
    for &pid in tree.iter().rev() {
        match kill_process(pid, Signal::CONT) {
            Ok(()) | Err(Errno::SRCH) => {}
            Err(e) if pid == leader => return Err(e),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Reaps the killed descendants of a server, re-parented to us once their parent died, until
/// none is left (or [`SIGNAL_TIMEOUT`] passes, for a process that is slow to die or was not
/// re-parented to us).
fn reap(pids: &[Pid]) {
    let deadline = Instant::now() + SIGNAL_TIMEOUT;
    let mut left = pids.to_vec();
    while !left.is_empty() {
        left.retain(|&pid| match waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some(_)) => false,
            Ok(None) | Err(Errno::INTR) => true,
            // Not (yet) our child: still there while its dying parent has not let go of it.
            Err(_) => proc_stat(pid.as_raw_pid()).is_some(),
        });
        if left.is_empty() || Instant::now() >= deadline {
            return;
        }
        thread::sleep(POLL);
    }
}

/// What a helper program that ran to its end printed.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Finished {
    /// The output when the program succeeded, else a [`ServerError::Command`].
    pub(crate) fn success(self, program: &str) -> Result<String, ServerError> {
        if self.status.success() {
            Ok(self.stdout)
        } else {
            Err(ServerError::Command {
                program: program.to_owned(),
                status: self.status,
                output: format!("{}{}", self.stderr, self.stdout)
                    .trim_end()
                    .to_owned(),
            })
        }
    }
}

/// Runs a helper program to its end, killing it past `timeout`.
pub(crate) fn run_bounded(
    mut cmd: Command,
    program: &str,
    timeout: Duration,
) -> Result<Finished, ServerError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ServerError::io(format!("spawn `{program}`"), e))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let mut status = None;
    let mut failure = None;
    poll_until(timeout, || match child.try_wait() {
        Ok(done) => {
            status = done;
            status.is_some()
        }
        Err(e) => {
            failure = Some(e);
            true
        }
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if let Some(e) = failure {
        return Err(ServerError::io(format!("wait for `{program}`"), e));
    }
    match status {
        Some(status) => Ok(Finished {
            status,
            stdout,
            stderr,
        }),
        None => Err(ServerError::Timeout {
            action: format!("`{program}`"),
            waited: timeout,
        }),
    }
}
