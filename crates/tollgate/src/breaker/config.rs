//! Breaker configuration and its validation.

use std::time::Duration;

use super::error::ConfigError;
use super::window::{MAX_BUCKETS, MAX_COUNT_WINDOW, SlidingWindow};

/// Settings of one circuit breaker.
///
/// Defaults follow resilience4j's: a count window of 100 calls, opening at a 50 % failure rate
/// once 100 calls were seen, 60 s open, 10 trial calls in half-open. Slow-call detection is off
/// until [`slow_call_duration`](Self::slow_call_duration) is set; when it is off the closed-state
/// hot path never reads the clock.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// The window the failure and slow-call rates are computed over.
    pub window: SlidingWindow,
    /// No decision is taken before the window holds this many calls (capped at the size of a
    /// count window).
    pub minimum_calls: u32,
    /// Failure rate, in percent (0 < r ≤ 100), at or above which the breaker opens.
    pub failure_rate_threshold: f64,
    /// Slow-call rate, in percent (0 < r ≤ 100), at or above which the breaker opens.
    pub slow_call_rate_threshold: f64,
    /// A call lasting at least this long is slow. `None` turns slow-call detection off.
    pub slow_call_duration: Option<Duration>,
    /// How long the breaker stays open before it lets trial calls through.
    pub wait_in_open: Duration,
    /// Exactly how many trial calls half-open admits.
    pub permitted_calls_in_half_open: u32,
    /// Longest stay in half-open before the breaker opens again, so that trials that never
    /// finish cannot keep it stuck. `None`: wait for the trials.
    pub max_wait_in_half_open: Option<Duration>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: SlidingWindow::Count(100),
            minimum_calls: 100,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: None,
            wait_in_open: Duration::from_secs(60),
            permitted_calls_in_half_open: 10,
            max_wait_in_half_open: Some(Duration::from_secs(120)),
        }
    }
}

impl BreakerConfig {
    /// Sets [`window`](Self::window).
    pub fn window(mut self, window: SlidingWindow) -> Self {
        self.window = window;
        self
    }

    /// Sets [`minimum_calls`](Self::minimum_calls).
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.minimum_calls = n;
        self
    }

    /// Sets [`failure_rate_threshold`](Self::failure_rate_threshold), in percent.
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.failure_rate_threshold = percent;
        self
    }

    /// Turns slow-call detection on: calls lasting `duration` or more are slow, and the breaker
    /// opens when their rate reaches `percent`.
    pub fn slow_calls(mut self, duration: Duration, percent: f64) -> Self {
        self.slow_call_duration = Some(duration);
        self.slow_call_rate_threshold = percent;
        self
    }

    /// Sets [`wait_in_open`](Self::wait_in_open).
    pub fn wait_in_open(mut self, wait: Duration) -> Self {
        self.wait_in_open = wait;
        self
    }

    /// Sets [`permitted_calls_in_half_open`](Self::permitted_calls_in_half_open).
    pub fn permitted_calls_in_half_open(mut self, n: u32) -> Self {
        self.permitted_calls_in_half_open = n;
        self
    }

    /// Sets [`max_wait_in_half_open`](Self::max_wait_in_half_open).
    pub fn max_wait_in_half_open(mut self, max: Option<Duration>) -> Self {
        self.max_wait_in_half_open = max;
        self
    }

    /// Checks every setting, naming the first one that is out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.window {
            SlidingWindow::Count(0) => return Err(ConfigError::new("window", "count must be > 0")),
            SlidingWindow::Count(n) if n > MAX_COUNT_WINDOW => {
                return Err(ConfigError::new(
                    "window",
                    "count must be at most 16,777,216",
                ));
            }
            SlidingWindow::Time { length, buckets } => {
                if buckets == 0 || length.is_zero() {
                    return Err(ConfigError::new("window", "length and buckets must be > 0"));
                }
                if buckets > MAX_BUCKETS {
                    return Err(ConfigError::new(
                        "window",
                        "a time window has at most 1,048,576 buckets",
                    ));
                }
                if length.as_nanos() < u128::from(buckets) {
                    return Err(ConfigError::new(
                        "window",
                        "a bucket must last at least 1 ns",
                    ));
                }
            }
            SlidingWindow::Count(_) => {}
        }
        check_percent("failure_rate_threshold", self.failure_rate_threshold)?;
        check_percent("slow_call_rate_threshold", self.slow_call_rate_threshold)?;
        if self.minimum_calls == 0 {
            return Err(ConfigError::new("minimum_calls", "must be > 0"));
        }
        if self.permitted_calls_in_half_open == 0 {
            return Err(ConfigError::new(
                "permitted_calls_in_half_open",
                "must be > 0",
            ));
        }
        if self.slow_call_duration.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new("slow_call_duration", "must be > 0"));
        }
        Ok(())
    }

    /// The number of calls the window must hold before a decision is taken.
    #[inline]
    pub(crate) fn effective_minimum_calls(&self) -> u32 {
        match self.window {
            SlidingWindow::Count(size) => self.minimum_calls.min(size),
            SlidingWindow::Time { .. } => self.minimum_calls,
        }
    }

    /// Whether the window is count-based (its plain successes are counted without a lock).
    #[inline]
    pub(crate) fn is_count_window(&self) -> bool {
        matches!(self.window, SlidingWindow::Count(_))
    }
}

fn check_percent(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if value > 0.0 && value <= 100.0 {
        Ok(())
    } else {
        Err(ConfigError::new(field, "must be a percentage in (0, 100]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_each_bad_field_is_named() {
        assert_eq!(BreakerConfig::default().validate(), Ok(()));
        let cases = [
            (
                BreakerConfig::default().window(SlidingWindow::Count(0)),
                "window",
            ),
            (
                BreakerConfig::default().failure_rate_threshold(0.0),
                "failure_rate_threshold",
            ),
            (
                BreakerConfig::default().failure_rate_threshold(100.5),
                "failure_rate_threshold",
            ),
            (
                BreakerConfig::default().failure_rate_threshold(f64::NAN),
                "failure_rate_threshold",
            ),
            (BreakerConfig::default().minimum_calls(0), "minimum_calls"),
            (
                BreakerConfig::default().permitted_calls_in_half_open(0),
                "permitted_calls_in_half_open",
            ),
            (
                BreakerConfig::default().slow_calls(Duration::ZERO, 50.0),
                "slow_call_duration",
            ),
            (
                BreakerConfig::default().window(SlidingWindow::Time {
                    length: Duration::from_secs(1),
                    buckets: 0,
                }),
                "window",
            ),
            (
                BreakerConfig::default().window(SlidingWindow::Time {
                    length: Duration::from_secs(3_600),
                    buckets: MAX_BUCKETS + 1,
                }),
                "window",
            ),
        ];
        let most = BreakerConfig::default().window(SlidingWindow::Time {
            length: Duration::from_secs(3_600),
            buckets: MAX_BUCKETS,
        });
        assert_eq!(most.validate(), Ok(()));
        for (config, field) in cases {
            assert_eq!(config.validate().map_err(|e| e.field()), Err(field));
        }
    }

    #[test]
    fn minimum_calls_is_capped_by_a_count_window() {
        let config = BreakerConfig::default()
            .window(SlidingWindow::Count(5))
            .minimum_calls(50);
        assert_eq!(config.effective_minimum_calls(), 5);
    }
}
