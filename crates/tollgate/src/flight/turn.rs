//! [`Turn`]: one caller's share of a flight, as a named future.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::task::Shared;
use super::{Caller, Outcome, Role};

/// A wait for a result run by someone else, boxed: only a caller that finds the result not
/// yet out when its own part is done pays for it.
type Waiting<T, E> = Pin<Box<dyn Future<Output = Shared<T, E>> + Send>>;

/// One caller's turn at a key of a [`Flight`](super::Flight), taken by
/// [`Flight::enter`](super::Flight::enter): resolves to the shared result and this caller's
/// [`Role`]. A leader nobody joined runs the work inside this future.
///
/// Dropping it is the caller leaving (see [`Flight::enter`](super::Flight::enter)). Polled
/// again after it returned its outcome, it stays pending.
#[must_use = "the turn's outcome is read by polling it; dropped, the caller leaves"]
pub struct Turn<K: Hash + Eq, T, E> {
    /// `None` once the outcome is returned (or from the start, when served from the cache):
    /// the caller leaves as soon as it has the result, so a result it alone holds is not shared
    /// with the call any more.
    caller: Option<Caller<K, T, E>>,
    role: Role,
    step: Step<T, E>,
}

enum Step<T, E> {
    /// The leader's part: run the work inline while nobody else waits.
    Leading,
    /// Read the published result, waiting for it if it is not out yet.
    Reading(Option<Waiting<T, E>>),
    /// Served from the cache.
    Cached(Option<Shared<T, E>>),
}

impl<K, T, E> Turn<K, T, E>
where
    K: Hash + Eq,
{
    /// This caller's turn at its call, playing `role` in it.
    pub(super) fn taken(caller: Caller<K, T, E>, role: Role) -> Self {
        let step = if caller.leads {
            Step::Leading
        } else {
            Step::Reading(None)
        };
        Turn {
            caller: Some(caller),
            role,
            step,
        }
    }

    /// A turn served from the cache: no call, just its result.
    pub(super) fn done(result: Shared<T, E>, role: Role) -> Self {
        Turn {
            caller: None,
            role,
            step: Step::Cached(Some(result)),
        }
    }

    /// How this caller takes part: leading, joining, or served from the cache.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The outcome, from the result this caller got: published, from the cache, or handed to
    /// a lone leader by its inline work. The caller is done: once the result is out, its going
    /// has nothing to move or abort.
    fn outcome(&mut self, result: Shared<T, E>) -> Poll<Outcome<T, E>> {
        self.caller = None;
        Poll::Ready(Outcome {
            result,
            role: self.role,
        })
    }

    /// The outcome once the result is published: taken out of the call when this caller is the
    /// last to hold it (the last joiner to read it, a leader whose work moved to a task, or a
    /// leader whose inline work finished while a joiner was still counted), so it is not cloned;
    /// a clone otherwise. (A lone leader whose work finished inline with nobody else holding the
    /// call does not come here: the work hands it its result unpublished, see
    /// `Call::poll_inline`.)
    fn published(&mut self) -> Poll<Outcome<T, E>>
    where
        T: Clone,
        E: Clone,
    {
        let result = self
            .caller
            .as_mut()
            .and_then(|caller| match Arc::get_mut(&mut caller.call) {
                Some(call) => call.take_result(),
                None => caller.call.result().cloned(),
            });
        match result {
            Some(result) => self.outcome(result),
            // Not reached: only called once the result is out, and it is set for good. Were it
            // reached, the caller stays, and leaves when the turn is dropped.
            None => Poll::Pending,
        }
    }
}

impl<K: Hash + Eq, T, E> Drop for Turn<K, T, E> {
    fn drop(&mut self) {
        if let Some(caller) = self.caller.take() {
            caller.leave();
        }
    }
}

// Nothing in a turn is pinned: the wait is boxed, the result is a plain value.
impl<K: Hash + Eq, T, E> Unpin for Turn<K, T, E> {}

impl<K, T, E> Future for Turn<K, T, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    type Output = Outcome<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<T, E>> {
        let this = self.get_mut();
        if let Step::Cached(result) = &mut this.step {
            return match result.take() {
                Some(result) => this.outcome(result),
                None => Poll::Pending,
            };
        }
        let Some(caller) = &this.caller else {
            return Poll::Pending;
        };
        let call = &caller.call;
        if let Step::Leading = this.step {
            let kept = ready!(call.poll_inline(cx));
            this.step = Step::Reading(None);
            if let Some(result) = kept {
                return this.outcome(result);
            }
        }
        let result = match (call.result(), &mut this.step) {
            (Some(_), _) => return this.published(),
            (None, Step::Reading(waiting)) => {
                let waiting = waiting.get_or_insert_with(|| {
                    let call = Arc::clone(call);
                    Box::pin(async move { call.wait().await })
                });
                ready!(waiting.as_mut().poll(cx))
            }
            (None, _) => return Poll::Pending,
        };
        this.outcome(result)
    }
}

impl<K: Hash + Eq, T, E> fmt::Debug for Turn<K, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match self.step {
            Step::Leading => "leading",
            Step::Reading(_) => "reading",
            Step::Cached(_) => "cached",
        };
        f.debug_struct("Turn")
            .field("role", &self.role)
            .field("step", &step)
            .field("done", &self.caller.is_none())
            .finish()
    }
}
