//! What a breaker tells the world: transition events, tracing and metrics.
//!
//! Metric names (labels: `breaker`, plus those listed):
//! - `tollgate_breaker_calls_total{outcome=success|failure|ignored}`, counter
//! - `tollgate_breaker_slow_calls_total`, counter
//! - `tollgate_breaker_not_permitted_total`, counter
//! - `tollgate_breaker_state`, gauge ([`State::code`]: 0 closed, 1 open, 2 half-open, …)
//! - `tollgate_breaker_transitions_total{from,to}`, counter
//!
//! Handles are registered when the breaker is built, so install the metrics recorder first.

use std::sync::Arc;

use metrics::{Counter, Gauge};

use super::{Outcome, State};

/// Why a breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// The failure rate (percent) of the closed window reached the threshold.
    FailureRate(f64),
    /// The slow-call rate (percent) of the closed window reached the threshold.
    SlowCallRate(f64),
    /// The wait in open elapsed; trial calls are let through.
    WaitElapsed,
    /// Every trial call was recorded and the rates stayed below the thresholds.
    TrialsPassed,
    /// The trial calls' failure or slow-call rate (percent) reached a threshold.
    TrialsFailed(f64),
    /// Half-open lasted longer than its maximum wait.
    HalfOpenTimeout,
    /// A manual operation (reset, disable, force open, metrics only).
    Manual,
}

/// A state transition of one breaker.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerEvent {
    /// The breaker's name.
    pub breaker: Arc<str>,
    /// The state it left.
    pub from: State,
    /// The state it entered.
    pub to: State,
    /// Why.
    pub reason: Reason,
}

#[derive(Debug)]
pub(crate) struct Metrics {
    success: Counter,
    failure: Counter,
    ignored: Counter,
    slow: Counter,
    not_permitted: Counter,
    state: Gauge,
}

impl Metrics {
    pub(crate) fn new(name: &Arc<str>) -> Self {
        let calls = |outcome: &'static str| {
            metrics::counter!("tollgate_breaker_calls_total",
                "breaker" => name.to_string(), "outcome" => outcome)
        };
        Metrics {
            success: calls("success"),
            failure: calls("failure"),
            ignored: calls("ignored"),
            slow: metrics::counter!("tollgate_breaker_slow_calls_total", "breaker" => name.to_string()),
            not_permitted: metrics::counter!("tollgate_breaker_not_permitted_total",
                "breaker" => name.to_string()),
            state: metrics::gauge!("tollgate_breaker_state", "breaker" => name.to_string()),
        }
    }

    #[inline]
    pub(crate) fn call(&self, outcome: Outcome, slow: bool) {
        match outcome {
            Outcome::Success => self.success.increment(1),
            Outcome::Failure => self.failure.increment(1),
            Outcome::Ignored => self.ignored.increment(1),
        }
        if slow {
            self.slow.increment(1);
        }
    }

    pub(crate) fn not_permitted(&self) {
        self.not_permitted.increment(1);
    }

    pub(crate) fn transition(&self, event: &BreakerEvent) {
        self.state.set(f64::from(event.to.code()));
        metrics::counter!("tollgate_breaker_transitions_total",
            "breaker" => event.breaker.to_string(),
            "from" => event.from.as_str(), "to" => event.to.as_str())
        .increment(1);
        match event.to {
            State::Open | State::ForcedOpen => tracing::warn!(
                breaker = %event.breaker, from = %event.from, to = %event.to,
                reason = ?event.reason, "circuit breaker opened"),
            _ => tracing::info!(
                breaker = %event.breaker, from = %event.from, to = %event.to,
                reason = ?event.reason, "circuit breaker changed state"),
        }
    }
}
