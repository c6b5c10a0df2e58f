//! A fake LLM server on its own port: answers [`AnalyzeRequest`]s after a configurable latency,
//! fails a configurable share of them with 503, and counts every call (`GET /stats`). The demo
//! and the tests use it in place of the paid API; its counter is the ground truth for "how many
//! times did we pay".

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::wire::{
    AnalyzeRequest, AnalyzeResponse, LetterAnalysis, LlmStats, QuestionsRequest, QuestionsResponse,
};

/// How the fake LLM behaves; changeable while it runs through [`FakeLlm`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FakeLlmConfig {
    /// How long each call takes before it answers.
    pub latency: Duration,
    /// The share of calls (0.0 to 1.0) answered `503 Service Unavailable`.
    pub failure_rate: f64,
}

impl Default for FakeLlmConfig {
    fn default() -> Self {
        FakeLlmConfig {
            latency: Duration::from_millis(200),
            failure_rate: 0.0,
        }
    }
}

#[derive(Debug)]
struct Shared {
    latency_us: AtomicU64,
    /// The failure rate in millionths.
    failure_ppm: AtomicU64,
    /// Calls still to fail before the failure rate applies again.
    fail_next: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    letters: AtomicU64,
    /// Calls received so far, for tests that wait for a call to arrive.
    arrivals: watch::Sender<u64>,
    /// While `true`, calls wait before answering.
    held: watch::Sender<bool>,
}

/// A running fake LLM; it stops when this handle is dropped.
#[derive(Debug)]
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: watch::Sender<()>,
}

impl FakeLlm {
    /// Starts the fake on `127.0.0.1` on a free port.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(config: FakeLlmConfig) -> std::io::Result<FakeLlm> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts the fake on `addr` (port 0 picks a free one).
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    pub async fn start_on(addr: SocketAddr, config: FakeLlmConfig) -> std::io::Result<FakeLlm> {
        let shared = Arc::new(Shared {
            latency_us: AtomicU64::new(0),
            failure_ppm: AtomicU64::new(0),
            fail_next: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            letters: AtomicU64::new(0),
            arrivals: watch::Sender::new(0),
            held: watch::Sender::new(false),
        });
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(());
        let app = Router::new()
            .route("/v1/analyze", post(analyze))
            .route("/v1/interview-questions", post(questions))
            .route("/stats", get(stats))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.changed().await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "fake llm server failed");
            }
        });
        let llm = FakeLlm {
            addr,
            shared,
            _stop: stop,
        };
        llm.configure(config);
        Ok(llm)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the latency and failure rate for the calls that start from now on.
    pub fn configure(&self, config: FakeLlmConfig) {
        let latency_us = u64::try_from(config.latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_us.store(latency_us, Ordering::Relaxed);
        let ppm = (config.failure_rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u64;
        self.shared.failure_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Fails the next `calls` calls with 503, whatever the failure rate (for retry tests).
    pub fn fail_next(&self, calls: u64) {
        self.shared.fail_next.store(calls, Ordering::SeqCst);
    }

    /// Holds every call, arrived or arriving, before it answers, until [`release`](Self::release).
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Lets held calls answer.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// Waits until at least `calls` calls have arrived in all.
    pub async fn arrived(&self, calls: u64) {
        let mut arrivals = self.shared.arrivals.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = arrivals.wait_for(|&n| n >= calls).await;
    }

    /// Its counters, as `GET /stats` reports them.
    pub fn stats(&self) -> LlmStats {
        self.shared.stats()
    }
}

impl Shared {
    fn stats(&self) -> LlmStats {
        LlmStats {
            calls: self.calls.load(Ordering::SeqCst),
            failures: self.failures.load(Ordering::SeqCst),
            letters: self.letters.load(Ordering::SeqCst),
        }
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<LlmStats> {
    Json(shared.stats())
}

/// What every paid call goes through: counted on arrival, held while held, the simulated
/// latency, then an injected failure or `None` to answer.
async fn paid_call(shared: &Shared) -> Option<Response> {
    shared.calls.fetch_add(1, Ordering::SeqCst);
    shared.arrivals.send_modify(|n| *n += 1);
    let mut held = shared.held.subscribe();
    let _ = held.wait_for(|&held| !held).await;
    let latency = Duration::from_micros(shared.latency_us.load(Ordering::Relaxed));
    if !latency.is_zero() {
        // The simulated model's thinking time.
        tokio::time::sleep(latency).await;
    }
    let forced = shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let ppm = shared.failure_ppm.load(Ordering::Relaxed);
    if forced || (ppm > 0 && fastrand::u64(0..1_000_000) < ppm) {
        shared.failures.fetch_add(1, Ordering::SeqCst);
        return Some((StatusCode::SERVICE_UNAVAILABLE, "injected failure").into_response());
    }
    None
}

async fn analyze(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    if let Some(failed) = paid_call(&shared).await {
        return failed;
    }
    let request: AnalyzeRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("bad analyze request: {e}")).into_response();
        }
    };
    shared
        .letters
        .fetch_add(request.letters.len() as u64, Ordering::SeqCst);
    Json(answer(&request)).into_response()
}

async fn questions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    if let Some(failed) = paid_call(&shared).await {
        return failed;
    }
    let request: QuestionsRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("bad questions request: {e}"),
            )
                .into_response();
        }
    };
    let questions = (1..=request.count.min(20))
        .map(|i| {
            format!(
                "question {i} for a {}: what would you do first?",
                request.role
            )
        })
        .collect();
    Json(QuestionsResponse { questions }).into_response()
}

/// A deterministic "analysis": the mood is picked from the letter's text.
fn answer(request: &AnalyzeRequest) -> AnalyzeResponse {
    const MOODS: [&str; 5] = ["hopeful", "tired", "grateful", "anxious", "calm"];
    let analyses: Vec<LetterAnalysis> = request
        .letters
        .iter()
        .map(|letter| {
            let sum = letter.text.bytes().fold(0usize, |acc, b| {
                acc.wrapping_mul(31).wrapping_add(usize::from(b))
            });
            let mood = MOODS[sum % MOODS.len()];
            let words = letter.text.split_whitespace().count();
            LetterAnalysis {
                letter_id: letter.id,
                mood: mood.to_owned(),
                summary: format!("a {mood} letter of {words} words"),
            }
        })
        .collect();
    let summary = format!(
        "{} letters from {} on {}",
        analyses.len(),
        request.user,
        request.date
    );
    AnalyzeResponse { summary, analyses }
}
