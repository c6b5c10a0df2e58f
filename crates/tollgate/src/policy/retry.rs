//! Retry: exponential backoff with full jitter, a retry budget, and a typed retryable classifier.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What to do after a failed attempt, decided from the operation's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Do not retry: the error is permanent.
    Stop,
    /// Retry after the backoff delay.
    Retry,
    /// Retry no sooner than this: the server said when (`Retry-After`). A hint longer than the
    /// policy's [`Retry::max_retry_after`] stops retrying instead of waiting that long.
    RetryAfter(Duration),
}

/// Decides whether an operation error is worth another attempt. Implemented by every
/// `Fn(&E) -> RetryDecision`, and by [`RetryAll`] (the default).
///
/// Timeouts are always retryable; breaker and bulkhead rejections never are (the call did not
/// reach the dependency, and retrying at once would only be rejected again).
pub trait RetryIf<E> {
    /// The decision for `error`.
    fn decide(&self, error: &E) -> RetryDecision;
}

impl<E, F: Fn(&E) -> RetryDecision> RetryIf<E> for F {
    fn decide(&self, error: &E) -> RetryDecision {
        self(error)
    }
}

/// Retries every operation error.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryAll;

impl<E> RetryIf<E> for RetryAll {
    fn decide(&self, _: &E) -> RetryDecision {
        RetryDecision::Retry
    }
}

/// How the backoff delay is randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// The exact exponential delay (useful in tests).
    None,
    /// A uniformly random delay between zero and the exponential delay ("full jitter"), which
    /// spreads the retries of many clients that failed together.
    Full,
}

/// Exponential backoff: `min(max, base × 2^(retry − 1))`, then jittered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// Backoff starting at `base`, capped at `max`, with full jitter.
    pub fn exponential(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            jitter: Jitter::Full,
        }
    }

    /// Sets the jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let cap = self.base.saturating_mul(factor).min(self.max);
        match self.jitter {
            Jitter::None => cap,
            Jitter::Full => cap.mul_f64(fastrand::f64()),
        }
    }
}

const SCALE: u64 = 1_000;

/// Bounds retries to a ratio of calls, so a failing dependency is not hit by a retry storm:
/// every call deposits `ratio` of a retry, every retry withdraws one. The balance starts at
/// `min_retries` and is capped at `min_retries + 100 × ratio` retries.
///
/// Share one budget (it is an `Arc` inside `Retry`) across every call to one dependency.
pub struct RetryBudget {
    deposit: u64,
    cap: u64,
    balance: AtomicU64,
}

impl RetryBudget {
    /// A budget of `ratio` retries per call (clamped to 0..=1000) plus `min_retries` in reserve.
    pub fn new(ratio: f64, min_retries: u32) -> Self {
        let deposit = (ratio.clamp(0.0, 1000.0) * SCALE as f64) as u64;
        let reserve = u64::from(min_retries) * SCALE;
        RetryBudget {
            deposit,
            cap: reserve + deposit * 100,
            balance: AtomicU64::new(reserve),
        }
    }

    /// Records a call.
    pub fn deposit(&self) {
        let _ = self
            .balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some((b + self.deposit).min(self.cap))
            });
    }

    /// Takes one retry from the budget; `false` when the budget is exhausted.
    pub fn withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                b.checked_sub(SCALE)
            })
            .is_ok()
    }

    /// Whole retries available now.
    pub fn available(&self) -> u64 {
        self.balance.load(Ordering::Acquire) / SCALE
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("available", &self.available())
            .finish()
    }
}

/// Retry settings of a policy.
#[derive(Clone, Debug)]
pub struct Retry {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) budget: Option<Arc<RetryBudget>>,
    pub(crate) max_retry_after: Duration,
}

impl Retry {
    /// At most `max_attempts` attempts in all (the first one included; at least 1), waiting
    /// `backoff` between them. `Retry-After` hints up to 60 s are honoured.
    pub fn new(max_attempts: u32, backoff: Backoff) -> Self {
        Retry {
            max_attempts: max_attempts.max(1),
            backoff,
            budget: None,
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// Limits retries with a shared budget.
    pub fn budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The longest `Retry-After` hint that is waited for; a longer one stops retrying.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The delay before retry number `retry` given the classifier's decision, or `None` to stop.
    pub(crate) fn delay(&self, retry: u32, decision: RetryDecision) -> Option<Duration> {
        match decision {
            RetryDecision::Stop => None,
            RetryDecision::Retry => Some(self.backoff.delay(retry)),
            RetryDecision::RetryAfter(hint) => (hint <= self.max_retry_after).then_some(hint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_delays_double_up_to_the_cap() {
        let ms = Duration::from_millis;
        let backoff = Backoff::exponential(ms(100), ms(1_000)).jitter(Jitter::None);
        let delays: Vec<_> = (1..=6).map(|r| backoff.delay(r)).collect();
        assert_eq!(
            delays,
            [ms(100), ms(200), ms(400), ms(800), ms(1_000), ms(1_000)]
        );
        assert_eq!(backoff.delay(u32::MAX), ms(1_000));
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_exponential_delay() {
        let ms = Duration::from_millis;
        let backoff = Backoff::exponential(ms(100), ms(1_000));
        for retry in 1..=5 {
            let cap = backoff.jitter(Jitter::None).delay(retry);
            for _ in 0..200 {
                assert!(backoff.delay(retry) <= cap);
            }
        }
    }

    #[test]
    fn budget_allows_reserve_plus_ratio_of_calls() {
        let budget = RetryBudget::new(0.2, 2);
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
        (0..10).for_each(|_| budget.deposit());
        assert_eq!(budget.available(), 2);
        assert!(budget.withdraw() && budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn retry_after_hints_beyond_the_limit_stop_retrying() {
        let retry = Retry::new(3, Backoff::exponential(Duration::ZERO, Duration::ZERO))
            .max_retry_after(Duration::from_secs(5));
        let hint = |s| RetryDecision::RetryAfter(Duration::from_secs(s));
        assert_eq!(retry.delay(1, hint(5)), Some(Duration::from_secs(5)));
        assert_eq!(retry.delay(1, hint(6)), None);
        assert_eq!(retry.delay(1, RetryDecision::Stop), None);
    }
}
