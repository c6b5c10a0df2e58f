//! Call policies: timeout, retry, bulkhead, circuit breaker and fallback, composed in one order.
//!
//! # Order
//! From the outside in: **fallback → retry → bulkhead → breaker → timeout → operation**.
//! - *Fallback* is outermost, so it handles every way a call can fail: the operation's errors,
//!   timeouts, exhausted retries, and rejections by the breaker or the bulkhead.
//! - *Retry* is outside the others, so every attempt is gated, timed and counted afresh, and no
//!   bulkhead slot is held while it sleeps between attempts.
//! - *Bulkhead* is outside the *breaker*, so a call turned away because we are saturated never
//!   counts as a failure of the dependency.
//! - *Timeout* is innermost: it bounds one attempt, and a timed-out attempt counts as a breaker
//!   failure.
//!
//! Breaker and bulkhead rejections are never retried; timeouts always may be; the operation's
//! own errors go through a typed [`RetryIf`] classifier.
//!
//! # Fail modes
//! Each call site picks what failure means: [`Propagate`] (fail-closed, the default), [`Skip`]
//! (fail-open) or [`Fallback`]. **A fallback is always run and awaited**, and the
//! [`Resolution`] says which path produced the result — [`Status`] `success`,
//! `fallback_success`, `skipped` or `failed` — keeping the operation's error, and the
//! fallback's own error when it fails too.
//!
//! # Cancellation
//! Dropping the call's future cancels the attempt in flight: its bulkhead slot is freed and its
//! breaker permit released without counting.
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use tollgate::policy::{Backoff, Policy, Retry, Status};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let policy = Policy::builder("weather")
//!     .timeout(Duration::from_secs(2))
//!     .retry(Retry::new(3, Backoff::exponential(Duration::from_millis(1), Duration::from_millis(5))))
//!     .build();
//!
//! let forecast = policy
//!     .call(|| async { Err::<String, _>("upstream 503") })
//!     .fallback(|_error| async { Ok::<_, &str>("sunny (cached)".to_string()) })
//!     .run()
//!     .await;
//! assert_eq!(forecast.status(), Status::FallbackSuccess);
//! assert_eq!(forecast.value().map(String::as_str), Some("sunny (cached)"));
//! # }
//! ```

mod bulkhead;
mod error;
mod outcome;
mod retry;

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use metrics::Counter;

pub use bulkhead::{Bulkhead, BulkheadGuard, BulkheadSlot, OwnedBulkheadSlot};
pub use error::{BulkheadFull, Elapsed, PolicyError};
pub use outcome::{FailMode, Fallback, Propagate, Resolution, Skip, Status};
pub use retry::{Backoff, Jitter, Retry, RetryAll, RetryBudget, RetryDecision, RetryIf};

use crate::breaker::{Breaker, Classifier, ErrIsFailure, Outcome};

/// A composition of call policies; see the [module docs](self) for the order.
pub struct Policy {
    name: Arc<str>,
    timeout: Option<Duration>,
    retry: Option<Retry>,
    bulkhead: Option<Bulkhead>,
    breaker: Option<Arc<Breaker>>,
    metrics: PolicyMetrics,
}

/// Builds a [`Policy`]. Every part is optional.
#[derive(Debug)]
pub struct PolicyBuilder {
    name: Arc<str>,
    timeout: Option<Duration>,
    retry: Option<Retry>,
    bulkhead: Option<Bulkhead>,
    breaker: Option<Arc<Breaker>>,
}

impl PolicyBuilder {
    /// Bounds each attempt to `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Retries failed attempts.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Bounds concurrent attempts.
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// Gates attempts with a circuit breaker.
    pub fn breaker(mut self, breaker: Arc<Breaker>) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Builds the policy.
    pub fn build(self) -> Policy {
        Policy {
            metrics: PolicyMetrics::new(&self.name),
            name: self.name,
            timeout: self.timeout,
            retry: self.retry,
            bulkhead: self.bulkhead,
            breaker: self.breaker,
        }
    }
}

impl Policy {
    /// Starts building a policy named `name` (the name labels its metrics and logs).
    pub fn builder(name: impl Into<Arc<str>>) -> PolicyBuilder {
        PolicyBuilder {
            name: name.into(),
            timeout: None,
            retry: None,
            bulkhead: None,
            breaker: None,
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The circuit breaker, if the policy has one.
    pub fn breaker(&self) -> Option<&Arc<Breaker>> {
        self.breaker.as_ref()
    }

    /// Prepares a call of `op` (called once per attempt). Configure the call site, then
    /// [`run`](Call::run) it.
    pub fn call<Op>(&self, op: Op) -> Call<'_, Op> {
        Call {
            policy: self,
            op,
            retry_if: RetryAll,
            classifier: ErrIsFailure,
            mode: Propagate,
        }
    }

    /// One attempt; `op` is invoked only once the bulkhead and the breaker let it through.
    async fn attempt<T, E, Op, Fut, C>(
        &self,
        op: &mut Op,
        classifier: &C,
    ) -> Result<T, PolicyError<E>>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classifier<T, E>,
    {
        let _slot = match &self.bulkhead {
            Some(bulkhead) => Some(bulkhead.acquire().await.map_err(|full| {
                self.metrics.bulkhead_rejected.increment(1);
                PolicyError::BulkheadFull(full)
            })?),
            None => None,
        };
        let permit = match &self.breaker {
            Some(breaker) => Some(breaker.try_acquire().map_err(PolicyError::Rejected)?),
            None => None,
        };
        let fut = op();
        let result = match self.timeout {
            Some(after) => match with_timeout(after, fut).await {
                Ok(result) => result,
                Err(_) => {
                    self.metrics.timeouts.increment(1);
                    if let Some(permit) = permit {
                        permit.record(Outcome::Failure);
                    }
                    return Err(PolicyError::Timeout(Elapsed { after }));
                }
            },
            None => fut.await,
        };
        if let Some(permit) = permit {
            permit.record(classifier.classify(&result));
        }
        result.map_err(PolicyError::Inner)
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("bulkhead", &self.bulkhead)
            .field("breaker", &self.breaker.as_ref().map(|b| b.name()))
            .finish()
    }
}

/// Like `tokio::time::timeout`, but the timer is only set up if the future does not finish on
/// its first poll: a call that completes at once pays nothing for its timeout.
async fn with_timeout<F: Future>(after: Duration, fut: F) -> Result<F::Output, ()> {
    let mut fut = pin!(fut);
    if let Poll::Ready(out) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Ok(out);
    }
    tokio::time::timeout(after, fut).await.map_err(|_| ())
}

/// One call site of a [`Policy`]: the operation, its retry classifier, its breaker classifier
/// and its fail mode.
#[must_use = "a call does nothing until `run` is awaited"]
pub struct Call<'p, Op, R = RetryAll, C = ErrIsFailure, M = Propagate> {
    policy: &'p Policy,
    op: Op,
    retry_if: R,
    classifier: C,
    mode: M,
}

impl<'p, Op, R, C, M> Call<'p, Op, R, C, M> {
    /// Decides which operation errors are retried (default: all).
    pub fn retry_if<R2, Fut, T, E>(self, retry_if: R2) -> Call<'p, Op, R2, C, M>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        R2: RetryIf<E>,
    {
        Call {
            policy: self.policy,
            op: self.op,
            retry_if,
            classifier: self.classifier,
            mode: self.mode,
        }
    }

    /// Decides how the breaker counts each attempt's result (default: `Err` is a failure).
    pub fn classify<C2, Fut, T, E>(self, classifier: C2) -> Call<'p, Op, R, C2, M>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C2: Classifier<T, E>,
    {
        Call {
            policy: self.policy,
            op: self.op,
            retry_if: self.retry_if,
            classifier,
            mode: self.mode,
        }
    }

    /// Fail-open: on failure, resolve as [`Status::Skipped`].
    pub fn fail_open(self) -> Call<'p, Op, R, C, Skip> {
        self.mode(Skip)
    }

    /// On failure, run `fallback` with the error and await it.
    pub fn fallback<G, Fut, T, E, GFut, F>(self, fallback: G) -> Call<'p, Op, R, C, Fallback<G>>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        G: FnOnce(&PolicyError<E>) -> GFut,
        GFut: Future<Output = Result<T, F>>,
    {
        self.mode(Fallback(fallback))
    }

    /// Sets the fail mode.
    pub fn mode<M2>(self, mode: M2) -> Call<'p, Op, R, C, M2> {
        Call {
            policy: self.policy,
            op: self.op,
            retry_if: self.retry_if,
            classifier: self.classifier,
            mode,
        }
    }
}

impl<Op, Fut, T, E, R, C, M> Call<'_, Op, R, C, M>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    R: RetryIf<E>,
    C: Classifier<T, E>,
    M: FailMode<T, E>,
{
    /// Runs the call: attempts, retries, then the fail mode.
    pub async fn run(mut self) -> Resolution<T, E, M::Error> {
        let policy = self.policy;
        let resolution = match self.attempts().await {
            Ok(value) => Resolution::Success(value),
            Err(error) => {
                tracing::debug!(policy = %policy.name, error = error.kind(), "call failed");
                self.mode.resolve(error).await
            }
        };
        policy.metrics.status(resolution.status());
        resolution
    }

    async fn attempts(&mut self) -> Result<T, PolicyError<E>> {
        let policy = self.policy;
        if let Some(budget) = policy.retry.as_ref().and_then(|r| r.budget.as_ref()) {
            budget.deposit();
        }
        let mut attempt = 1;
        loop {
            let error = match policy.attempt(&mut self.op, &self.classifier).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let delay = match policy.retry.as_ref() {
                Some(retry) if attempt < retry.max_attempts => {
                    self.retry_delay(retry, attempt, &error)
                }
                _ => None,
            };
            let Some(delay) = delay else {
                return Err(error);
            };
            policy.metrics.retries.increment(1);
            tracing::debug!(policy = %policy.name, attempt, ?delay, error = error.kind(), "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn retry_delay(&self, retry: &Retry, attempt: u32, error: &PolicyError<E>) -> Option<Duration> {
        let decision = match error {
            PolicyError::Inner(inner) => self.retry_if.decide(inner),
            PolicyError::Timeout(_) => RetryDecision::Retry,
            PolicyError::Rejected(_) | PolicyError::BulkheadFull(_) => RetryDecision::Stop,
        };
        let delay = retry.delay(attempt, decision)?;
        match &retry.budget {
            Some(budget) if !budget.withdraw() => None,
            _ => Some(delay),
        }
    }
}

impl<Op, R, C, M> fmt::Debug for Call<'_, Op, R, C, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("policy", &self.policy.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct PolicyMetrics {
    by_status: [Counter; 4],
    retries: Counter,
    timeouts: Counter,
    bulkhead_rejected: Counter,
}

impl PolicyMetrics {
    fn new(name: &Arc<str>) -> Self {
        let status = |s: Status| metrics::counter!("tollgate_policy_calls_total", "policy" => name.to_string(), "status" => s.as_str());
        let named = |metric: &'static str| metrics::counter!(metric, "policy" => name.to_string());
        PolicyMetrics {
            by_status: [
                status(Status::Success),
                status(Status::FallbackSuccess),
                status(Status::Skipped),
                status(Status::Failed),
            ],
            retries: named("tollgate_policy_retries_total"),
            timeouts: named("tollgate_policy_timeouts_total"),
            bulkhead_rejected: named("tollgate_policy_bulkhead_rejected_total"),
        }
    }

    fn status(&self, status: Status) {
        let index = match status {
            Status::Success => 0,
            Status::FallbackSuccess => 1,
            Status::Skipped => 2,
            Status::Failed => 3,
        };
        self.by_status[index].increment(1);
    }
}
