//! Building [`Resources`]: live-resource limit, idle timeout and clock.

use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use super::{Factory, Resources};
use crate::clock::Clock;

/// What a creation does when the live-resource limit is reached (after evicting idle ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenFull {
    /// Fail at once with [`Error::LimitReached`](super::Error::LimitReached).
    Fail,
    /// Wait up to this long for a resource to be closed, then fail with
    /// [`Error::Timeout`](super::Error::Timeout).
    Wait(Duration),
}

/// Configures [`Resources`]; obtained from [`Resources::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<K, F> {
    pub(crate) factory: F,
    pub(crate) limit: Option<(usize, WhenFull)>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) clock: Clock,
    _key: PhantomData<fn() -> K>,
}

impl<K, F> Builder<K, F>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: Factory<K>,
{
    pub(crate) fn new(factory: F) -> Self {
        Builder {
            factory,
            limit: None,
            idle_timeout: None,
            clock: Clock::default(),
            _key: PhantomData,
        }
    }

    /// At most `limit` live resources (default: unlimited); `when_full` says whether a creation
    /// beyond it fails or waits.
    pub fn max_live(mut self, limit: usize, when_full: WhenFull) -> Self {
        self.limit = Some((limit, when_full));
        self
    }

    /// Resources unused for this long are closed by [`Resources::evict_idle`] (and by a
    /// creation that finds the limit reached). Default: never idle.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// The clock idle times are measured with (default: [`Clock::Tokio`]).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The configured manager.
    pub fn build(self) -> Resources<K, F> {
        Resources::from_builder(self)
    }
}
