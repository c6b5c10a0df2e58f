//! The service's client of the LLM analysis API: JSON over HTTP/1.1, every call through a
//! [`Policy`] of circuit breaker, per-attempt timeout and retry with jittered backoff.
//!
//! A 5xx, 429, timeout or connection error is retried and counts as a failure of the
//! dependency; a 4xx is our own fault and is neither retried nor counted by the breaker. When
//! the breaker is open the call fails at once with [`LlmError::CircuitOpen`] and its
//! `retry_after`, which the service turns into `503` with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate::breaker::{Breaker, BreakerConfig, ConfigError, Outcome, SlidingWindow};
use tollgate::policy::{Backoff, Jitter, Policy, PolicyError, Retry, RetryDecision};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::{AnalyzeRequest, AnalyzeResponse, QuestionsRequest, QuestionsResponse};

/// The largest LLM answer read (an answer is a few hundred bytes per letter).
const MAX_ANSWER: usize = 4 << 20;

/// How the LLM is called.
#[derive(Clone, Debug)]
pub struct LlmSettings {
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First retry delay (doubling, full jitter, capped at 2 s).
    pub backoff: Duration,
    /// The circuit breaker's configuration.
    pub breaker: BreakerConfig,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(100),
            breaker: BreakerConfig::default()
                .window(SlidingWindow::Count(20))
                .minimum_calls(10)
                .failure_rate_threshold(50.0)
                .wait_in_open(Duration::from_secs(10))
                .permitted_calls_in_half_open(2),
        }
    }
}

/// Why the LLM gave no analysis.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The circuit breaker is open: the LLM was not called.
    #[error("the LLM circuit breaker is open")]
    CircuitOpen {
        /// When the breaker lets a trial call through again, if known.
        retry_after: Option<Duration>,
    },
    /// The last attempt timed out.
    #[error("the LLM did not answer within {0:?}")]
    Timeout(Duration),
    /// The LLM answered with an error status.
    #[error("the LLM answered {0}")]
    Status(u16),
    /// The connection failed.
    #[error("cannot reach the LLM: {0}")]
    Transport(String),
    /// The answer was not a valid analysis.
    #[error("the LLM's answer is invalid: {0}")]
    BadAnswer(String),
}

impl LlmError {
    fn retry_decision(&self) -> RetryDecision {
        match self {
            LlmError::Status(status) if *status == 429 || *status >= 500 => RetryDecision::Retry,
            LlmError::Transport(_) | LlmError::Timeout(_) => RetryDecision::Retry,
            _ => RetryDecision::Stop,
        }
    }

    fn breaker_outcome(&self) -> Outcome {
        match self {
            LlmError::Status(status) if *status < 500 && *status != 429 => Outcome::Ignored,
            _ => Outcome::Failure,
        }
    }
}

/// A client of the LLM analysis API. Cheap to clone: clones share the connection pool and the
/// breaker.
#[derive(Clone, Debug)]
pub struct LlmClient {
    endpoint: http::Uri,
    questions: http::Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    policy: Arc<Policy>,
    breaker: Arc<Breaker>,
    timeout: Duration,
}

impl LlmClient {
    /// A client of the API at `base_url` (`http://host:port`; requests go to `/v1/analyze`).
    ///
    /// # Errors
    /// [`LlmConfigError`] when the URL is not an `http://` URL or the breaker configuration is
    /// invalid.
    pub fn new(base_url: &str, settings: LlmSettings) -> Result<LlmClient, LlmConfigError> {
        let base = base_url.trim_end_matches('/');
        let endpoint: http::Uri = format!("{base}/v1/analyze")
            .parse()
            .map_err(|e| LlmConfigError::Url(format!("{base_url:?}: {e}")))?;
        if endpoint.scheme_str() != Some("http") || endpoint.host().is_none() {
            return Err(LlmConfigError::Url(format!(
                "{base_url:?}: expected http://host[:port]"
            )));
        }
        let questions: http::Uri = format!("{base}/v1/interview-questions")
            .parse()
            .map_err(|e| LlmConfigError::Url(format!("{base_url:?}: {e}")))?;
        let breaker =
            Arc::new(Breaker::new("llm", settings.breaker).map_err(LlmConfigError::Breaker)?);
        let backoff =
            Backoff::exponential(settings.backoff, Duration::from_secs(2)).jitter(Jitter::Full);
        let policy = Policy::builder("llm")
            .timeout(settings.timeout)
            .retry(Retry::new(settings.attempts, backoff))
            .breaker(Arc::clone(&breaker))
            .build();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(LlmClient {
            endpoint,
            questions,
            client,
            policy: Arc::new(policy),
            breaker,
            timeout: settings.timeout,
        })
    }

    /// The circuit breaker in front of the LLM.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    /// Analyses one day's letters in one call (retried and guarded by the policy).
    ///
    /// # Errors
    /// [`LlmError`] from the last attempt, or `CircuitOpen` without any attempt.
    pub async fn analyze(&self, request: &AnalyzeRequest) -> Result<AnalyzeResponse, LlmError> {
        self.call(&self.endpoint, request).await
    }

    /// Interview questions for a role, in one call (retried and guarded by the same policy).
    ///
    /// # Errors
    /// [`LlmError`] from the last attempt, or `CircuitOpen` without any attempt.
    pub async fn questions(
        &self,
        request: &QuestionsRequest,
    ) -> Result<QuestionsResponse, LlmError> {
        self.call(&self.questions, request).await
    }

    async fn call<Req: Serialize, Res: DeserializeOwned>(
        &self,
        endpoint: &http::Uri,
        request: &Req,
    ) -> Result<Res, LlmError> {
        let body = Bytes::from(
            serde_json::to_vec(request).map_err(|e| LlmError::BadAnswer(e.to_string()))?,
        );
        let resolution = self
            .policy
            .call(|| self.attempt(endpoint, body.clone()))
            .retry_if(|e: &LlmError| e.retry_decision())
            .classify(|result: &Result<Res, LlmError>| match result {
                Ok(_) => Outcome::Success,
                Err(e) => e.breaker_outcome(),
            })
            .run()
            .await;
        let outcome = match resolution.into_result() {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(LlmError::BadAnswer("no answer".into())),
            Err(PolicyError::Inner(e)) => Err(e),
            Err(PolicyError::Timeout(_)) => Err(LlmError::Timeout(self.timeout)),
            Err(PolicyError::Rejected(rejected)) => Err(LlmError::CircuitOpen {
                retry_after: rejected.retry_after(),
            }),
            Err(other) => Err(LlmError::Transport(other.to_string())),
        };
        let label = match &outcome {
            Ok(_) => "success",
            Err(LlmError::CircuitOpen { .. }) => "circuit_open",
            Err(LlmError::Timeout(_)) => "timeout",
            Err(LlmError::Status(_)) => "status",
            Err(LlmError::Transport(_)) => "transport",
            Err(LlmError::BadAnswer(_)) => "bad_answer",
        };
        metrics::counter!("tollgate_demo_llm_calls_total", "outcome" => label).increment(1);
        outcome
    }

    async fn attempt<Res: DeserializeOwned>(
        &self,
        endpoint: &http::Uri,
        body: Bytes,
    ) -> Result<Res, LlmError> {
        let request = http::Request::post(endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| LlmError::Transport(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(LlmError::Status(status.as_u16()));
        }
        serde_json::from_slice(&body).map_err(|e| LlmError::BadAnswer(e.to_string()))
    }
}

/// An invalid LLM client configuration.
#[derive(Debug, thiserror::Error)]
pub enum LlmConfigError {
    /// The URL is not `http://host[:port]`.
    #[error("invalid LLM URL {0}")]
    Url(String),
    /// The breaker configuration is invalid.
    #[error("invalid LLM breaker configuration: {0}")]
    Breaker(ConfigError),
}
