//! [`ChildTest`]: a holder in another process — this test binary run again, selecting one
//! ignored test — that the parent talks to by lines and can pause (SIGSTOP), resume and kill
//! (SIGKILL).
//!
//! The child test reads its settings from environment variables (an unset variable means it
//! was run directly, e.g. with `--ignored`: it then fails, saying which parent test runs it),
//! prints lines `NAME value…` for the parent, and reads the parent's lines from its stdin
//! ([`next_line`]).

use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rustix::process::{Pid, Signal, kill_process};

/// A child process running one ignored test of the current test binary.
#[derive(Debug)]
pub struct ChildTest {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl ChildTest {
    /// Runs the ignored test `test` (its full path, e.g. `holder_process`) of this binary with
    /// the environment `env` added.
    pub fn spawn(test: &str, env: &[(&str, String)]) -> ChildTest {
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        command
            .args([
                test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn the child test process");
        let stdout = child.stdout.take().expect("piped stdout");
        ChildTest {
            stdin: child.stdin.take(),
            lines: BufReader::new(stdout).lines(),
            child,
        }
    }

    /// Blocks until the child prints a line containing `name` (an upper-case word such as
    /// `LOCKED`) and returns what follows it, trimmed; panics if the child exits first.
    pub fn expect(&mut self, name: &str) -> String {
        for line in self.lines.by_ref() {
            let line = line.expect("read the child's output");
            // The test harness prints `test <name> ... ` before the child's first line.
            if let Some(at) = line.find(name) {
                return line[at + name.len()..].trim().to_owned();
            }
        }
        panic!("the child exited before printing {name}");
    }

    /// Sends one line to the child's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the child's stdin is open");
        writeln!(stdin, "{line}").expect("write to the child");
        stdin.flush().expect("flush the child's stdin");
    }

    /// SIGSTOP: the child stops running at once, all its threads (a GC pause, a stalled VM).
    pub fn pause(&self) {
        kill_process(self.pid(), Signal::STOP).expect("SIGSTOP the child");
    }

    /// SIGCONT: the child runs again.
    pub fn resume(&self) {
        kill_process(self.pid(), Signal::CONT).expect("SIGCONT the child");
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn pid(&self) -> Pid {
        Pid::from_child(&self.child)
    }
}

impl Drop for ChildTest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// In the child: the next line the parent sent, without its newline (empty at end of input).
pub fn next_line() -> String {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(_) => line.trim_end().to_owned(),
        Err(e) => panic!("cannot read the parent's line: {e}"),
    }
}
