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
        let mut all = vec!["--db".to_owned(), db.display().to_string()];
        all.extend_from_slice(args);
        Instance::serve(&all)
    }

    /// Starts `tollgate serve --listen 127.0.0.1:0 ARGS…` and waits until it listens.
    pub fn serve(args: &[String]) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["serve", "--listen", "127.0.0.1:0"])
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

/// `POST url` with a JSON body (none for `null`).
pub async fn post(
    client: &tollgate_demo::client::HttpClient,
    url: &str,
    body: serde_json::Value,
) -> tollgate_demo::client::Answer {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    client.send(http::Method::POST, url, body).await.unwrap()
}

/// The sum of a Prometheus metric's samples (all label sets) in `text`.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// `GET {url}/metrics` as text.
pub async fn metrics(client: &tollgate_demo::client::HttpClient, url: &str) -> String {
    let answer = client
        .send(http::Method::GET, &format!("{url}/metrics"), Vec::new())
        .await
        .unwrap();
    String::from_utf8_lossy(&answer.body).into_owned()
}

/// Sends `n` POSTs of `body`, request `i` to `urls[i % urls.len()]`, all released together by
/// a start gate; each status arrives on the returned channel as its answer does.
pub fn release_together(
    client: &tollgate_demo::client::HttpClient,
    urls: &[String],
    n: usize,
    body: serde_json::Value,
) -> tokio::sync::mpsc::UnboundedReceiver<http::StatusCode> {
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let (answers, statuses) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        let (client, gate, body) = (client.clone(), gate.clone(), body.clone());
        let (url, answers) = (urls[i % urls.len()].clone(), answers.clone());
        tokio::spawn(async move {
            gate.wait().await;
            let _ = answers.send(post(&client, &url, body).await.status);
        });
    }
    statuses
}

/// The next `n` statuses from `statuses`.
pub async fn next_statuses(
    statuses: &mut tokio::sync::mpsc::UnboundedReceiver<http::StatusCode>,
    n: usize,
) -> Vec<http::StatusCode> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        got.push(
            statuses
                .recv()
                .await
                .expect("a request task ended without an answer"),
        );
    }
    got
}

/// How many of `statuses` are `status`.
pub fn count(statuses: &[http::StatusCode], status: http::StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Stores `n` letters of `user` for 2026-11-21 through the service at `url`.
pub async fn store_letters(
    client: &tollgate_demo::client::HttpClient,
    url: &str,
    user: &str,
    n: usize,
) {
    for i in 0..n {
        let letter = serde_json::json!({ "date": "2026-11-21", "text": format!("letter {i}") });
        let stored = post(client, &format!("{url}/users/{user}/letters"), letter).await;
        assert_eq!(stored.status, http::StatusCode::CREATED);
    }
}
