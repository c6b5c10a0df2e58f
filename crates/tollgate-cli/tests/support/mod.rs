//! `tollgate serve` processes for the multi-instance tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `tollgate serve` process and the address it listens on.
pub struct Instance {
    /// The process.
    pub child: Child,
    /// Its base URL.
    pub url: String,
}

impl Instance {
    /// Starts `tollgate serve --listen 127.0.0.1:0 --db DB ARGS…` and waits until it listens.
    pub fn start(db: &Path, args: &[String]) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let url = loop {
            let mut line = String::new();
            assert_ne!(
                stderr.read_line(&mut line).unwrap(),
                0,
                "serve exited early"
            );
            if let Some(addr) = line.trim().strip_prefix("tollgate service listening on ") {
                break addr.to_owned();
            }
        };
        // Keep draining its logs so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in stderr.lines() {});
        Instance { child, url }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}
