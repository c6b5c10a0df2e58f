//! The shared execution: run inside its leader's future while the leader is alone, moved into a
//! task owned by no caller as soon as it is not.
//!
//! A leader nobody joins drives the work itself, as part of its own future: no task is spawned
//! for the common case of one caller. The work moves into a tokio task of its own when
//! - a second caller joins (so no caller's progress depends on another caller being polled: a
//!   leader parked unpolled inside a `select!` or a buffered stream never stalls its joiners), or
//! - the leader is dropped before the work finished (so cancelling the leader never cancels the
//!   work, unless [`Builder::abort_when_unused`](super::Builder::abort_when_unused) says to and
//!   nobody else waits).
//!
//! Whatever way the work ends — a value, an error, a panic, an abort, or the runtime shutting
//! down — its end ([`complete`], called by [`Drive`] or by [`Finish`] when the work is dropped
//! unfinished) removes the call's map entry, so no entry outlives its execution, and delivers
//! exactly one result: published for every caller, or handed straight to a lone leader whose
//! work finished inline with nobody else holding the call.

use std::future::Future;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::Inner;
use super::error::{Error, panic_message};

pub(crate) type Shared<T, E> = Result<T, Error<E>>;

/// The work with its [`Finish`], type-erased so that a [`Call`] does not name the future.
type Work<T, E> = Pin<Box<dyn Run<T, E> + Send>>;

/// The work and its publication, polled by its leader inline or, once moved, by its task.
trait Run<T, E>: Send {
    /// Polls the work; once it has finished, its result is published and its entry retired
    /// (see [`complete`]). With `keep` (the leader polling inline), the result comes back
    /// instead of being published when no other caller holds the call.
    fn poll_run(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        keep: bool,
    ) -> Poll<Option<Shared<T, E>>>;

    /// The work as a task's future (the same allocation), which publishes its result.
    fn into_task(self: Pin<Box<Self>>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Holders of a call whose leader runs its work inline: the leader's turn and the work's
/// [`Finish`]. More, once the entry is removed, means callers that joined and may read the
/// published result.
const INLINE_HOLDERS: usize = 2;

/// One in-flight execution: where its result is published, where its work runs, how to stop it.
pub(crate) struct Call<K, T, E> {
    /// The hash of the call's key in the flight's map (see `SlotMap::remove_hashed`).
    hash: u64,
    /// The key, kept only when the flight caches results (the cache is keyed by it).
    cache_key: Option<K>,
    /// The runtime of the caller that created the call (its leader): the work's task goes
    /// there, whichever caller moves it — not onto a joiner's runtime, which may not be
    /// driven once that joiner's `block_on` returns.
    runtime: Option<Handle>,
    /// The result, set once by [`complete`].
    result: OnceLock<Shared<T, E>>,
    /// Wakes the callers waiting for `result`.
    published: Notify,
    /// Set by whoever moves the work into a task, under the `inline` lock.
    abort: OnceLock<AbortHandle>,
    inline: Mutex<Inline<T, E>>,
    /// A joiner asked for the work to move into a task (see [`Call::move_to_task`]).
    wants_task: AtomicBool,
}

/// The work while its leader's future runs it.
struct Inline<T, E> {
    work: Option<Work<T, E>>,
    /// The leader's waker: woken when the work leaves for a task, so the leader goes on to
    /// wait for the published result like any joiner.
    leader: Option<Waker>,
}

impl<T, E> Default for Inline<T, E> {
    fn default() -> Self {
        Inline {
            work: None,
            leader: None,
        }
    }
}

impl<K, T, E> Call<K, T, E> {
    pub(crate) fn new(hash: u64, cache_key: Option<K>) -> Self {
        Call {
            hash,
            cache_key,
            runtime: Handle::try_current().ok(),
            result: OnceLock::new(),
            published: Notify::new(),
            abort: OnceLock::new(),
            inline: Mutex::new(Inline::default()),
            wants_task: AtomicBool::new(false),
        }
    }

    /// The work never panics while locked (its [`Drive`] catches the panics of the work), so a
    /// poisoned lock still holds a consistent `Inline`.
    fn inline(&self) -> MutexGuard<'_, Inline<T, E>> {
        self.inline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The published result, if it is out.
    pub(crate) fn result(&self) -> Option<&Shared<T, E>> {
        self.result.get()
    }

    /// The published result, taken out of a call nobody else holds any more (the call itself
    /// is not moved: it is large).
    pub(crate) fn take_result(&mut self) -> Option<Shared<T, E>> {
        self.result.take()
    }

    /// Waits for the published result.
    pub(crate) async fn wait(&self) -> Shared<T, E>
    where
        T: Clone,
        E: Clone,
    {
        if let Some(result) = self.result.get() {
            return result.clone();
        }
        loop {
            // Registered before the check, so a result published in between still wakes us.
            let mut published = std::pin::pin!(self.published.notified());
            published.as_mut().enable();
            if let Some(result) = self.result.get() {
                return result.clone();
            }
            published.await;
        }
    }

    /// The leader's turn at its work: polls it while it runs inline. `Ready` once it finished
    /// or left for a task: with the result itself when the work finished here and nobody else
    /// holds the call (it is then not published: nobody could read it), else `None` (the result
    /// is, or will be, published).
    pub(crate) fn poll_inline(&self, cx: &mut Context<'_>) -> Poll<Option<Shared<T, E>>> {
        {
            let mut inline = self.inline();
            let Some(work) = inline.work.as_mut() else {
                return Poll::Ready(None);
            };
            if let Poll::Ready(kept) = work.as_mut().poll_run(cx, true) {
                inline.work = None;
                return Poll::Ready(kept);
            }
            if !inline
                .leader
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                inline.leader = Some(cx.waker().clone());
            }
        }
        // A joiner that found the lock taken left this flag for us (the fences pair with
        // `hand_to_task`'s: one of the two sides sees the other).
        fence(Ordering::SeqCst);
        if self.wants_task.load(Ordering::Relaxed) {
            self.move_to_task();
        }
        Poll::Pending
    }

    /// The leader has put its work in place. It moves into a task at once when the flight
    /// says so (`always_in_task`), or when a joiner arrived while the work was being made: that
    /// joiner found no work to move and left `wants_task` for us (the fences pair with
    /// `hand_to_task`'s, so one side sees the other). Without this, the work would wait for the
    /// leader's first poll, which may never come. (A leader outside any runtime keeps it: there
    /// is nowhere to spawn it, and its joiners wait for it, as the module's docs say.)
    pub(crate) fn started(&self, always_in_task: bool) {
        fence(Ordering::SeqCst);
        if always_in_task || self.wants_task.load(Ordering::Relaxed) {
            self.move_to_task();
        }
    }

    /// A joiner arrived: the work must not depend on the leader being polled any more.
    pub(crate) fn hand_to_task(&self) {
        self.wants_task.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.move_to_task();
    }

    /// Moves inline work into a task, unless the lock is busy: its holder is then the leader
    /// putting it in place or polling it (it sees `wants_task` after unlocking), someone else
    /// moving it, or the leader leaving (which moves it too).
    pub(crate) fn move_to_task(&self) {
        // Without a runtime to run it in, the work stays with the leader; checked before the
        // lock is tried, so such a caller never keeps another, who has one, from moving it.
        if self.runtime.is_none() && Handle::try_current().is_err() {
            return;
        }
        let mut inline = match self.inline.try_lock() {
            Ok(inline) => inline,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let Some(work) = inline.work.take() else {
            return;
        };
        if let Err(work) = self.spawn(work) {
            inline.work = Some(work);
            return;
        }
        let leader = inline.leader.take();
        drop(inline);
        if let Some(leader) = leader {
            leader.wake();
        }
    }

    /// Spawns the work as a task on the leader's runtime, else the current one (under the
    /// `inline` lock, so that a caller reading `abort` after taking the lock sees the handle);
    /// gives it back when there is no runtime at all.
    fn spawn(&self, work: Work<T, E>) -> Result<(), Work<T, E>> {
        let task = match &self.runtime {
            Some(runtime) => runtime.spawn(work.into_task()),
            None => match Handle::try_current() {
                Ok(runtime) => runtime.spawn(work.into_task()),
                Err(_) => return Err(work),
            },
        };
        let _ = self.abort.set(task.abort_handle());
        Ok(())
    }

    /// The hash of the call's key in the flight's map.
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The call's key, when the flight caches results.
    pub(crate) fn cache_key(&self) -> Option<&K> {
        self.cache_key.as_ref()
    }

    /// A caller is going. The leader's inline work moves into a task, or, when `abandon` (the
    /// abort option and nobody else waits), is dropped; an abandoned task is aborted. Both end
    /// with [`Finish`] publishing `Aborted` and retiring the entry.
    pub(crate) fn leave(&self, abandon: bool) {
        let work = {
            let mut inline = self.inline();
            inline.leader = None;
            let work = inline.work.take();
            match (work, abandon) {
                // Nowhere to run it: dropped below (its callers get `Aborted`).
                (Some(work), false) => self.spawn(work).err(),
                (work, _) => work,
            }
            // A task is spawned only under this lock, so its handle is set by now.
        };
        // Dropped outside the lock: dropping it runs `Finish`, which publishes.
        drop(work);
        if abandon && let Some(handle) = self.abort.get() {
            handle.abort();
        }
    }
}

/// Publishes a result and retires the call: cache first (unless `cache_it` is false: the
/// result came from the cache), then the map entry, then the waiters, so a caller that sees the
/// result also sees the entry gone. Never panics.
///
/// With `keep` (the leader finishing its work inline), the result is handed back rather than
/// published when the leader's turn and the work are the call's only holders once its entry is
/// gone: nobody else can read it, and no caller can join any more. (Joiners take their share of
/// the call under the shard lock that `remove_hashed` takes after them, so the count read here
/// includes every one of them; one that has left since may still be counted, and then the result
/// is published and the leader reads it from the call like a joiner would.)
pub(crate) fn complete<K, T, E>(
    inner: &Inner<K, T, E>,
    call: &Arc<Call<K, T, E>>,
    result: Shared<T, E>,
    cache_it: bool,
    keep: bool,
) -> Option<Shared<T, E>>
where
    K: Hash + Eq + Clone,
    T: Clone,
    E: Clone,
{
    if cache_it && let (Some(cache), Some(key)) = (&inner.cache, &call.cache_key) {
        // The only user code here (the key's and the result's `Clone`, the key's `Hash`): a
        // panic in it must not keep the result from being published and the entry retired.
        let put = catch_unwind(AssertUnwindSafe(|| cache.put(key.clone(), &result)));
        if let Err(payload) = put {
            tracing::warn!(panic = %panic_message(payload.as_ref()), "flight: caching a result panicked");
        }
    }
    inner.calls.remove_hashed(call.hash, call);
    if keep && Arc::strong_count(call) <= INLINE_HOLDERS {
        return Some(result);
    }
    // Set once: a `Finish` that published does not publish again.
    let _ = call.result.set(result);
    call.published.notify_waiters();
    None
}

/// Makes the work with `make` and gives it to the call, to be run by the leader (see
/// [`Call::poll_inline`]). The work is made inside its [`Drive`], in a box allocated before it
/// (see [`made_in_box`]); should `make` panic, nothing is changed (the caller publishes the
/// panic).
pub(crate) fn start<K, T, E, F, Fut>(
    inner: &Arc<Inner<K, T, E>>,
    call: &Arc<Call<K, T, E>>,
    make: F,
) where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    // In the leader's span whether it runs inline or in a task: its events carry the request.
    // Outside any span (no subscriber, or none entered) there is nothing to carry or pay for.
    let span = tracing::Span::current();
    let finish = || Finish {
        inner: Arc::clone(inner),
        call: Arc::clone(call),
        done: false,
    };
    // In the `Drive`s below, `work` comes before `finish`: no `Finish` exists (to publish
    // `Aborted`) if `make` panics.
    let work: Work<T, E> = if span.is_none() {
        made_in_box(|| Drive {
            work: make(),
            finish: finish(),
        })
    } else {
        made_in_box(|| Spanned {
            span,
            run: Slot::Running {
                run: Drive {
                    work: make(),
                    finish: finish(),
                },
            },
        })
    };
    call.inline().work = Some(work);
}

/// `make`'s value in a box allocated before it is made. `Box::write` does not promise to build
/// it in place, but with this compiler the work (the inner call's future, often a few hundred
/// bytes) was copied twice on its way into the box, against three times when made first (the
/// coalescing benchmark's 248-byte work, counted in a debugger).
fn made_in_box<R>(make: impl FnOnce() -> R) -> Pin<Box<R>> {
    let slot = Box::new_uninit();
    Box::into_pin(Box::write(slot, make()))
}

pin_project! {
    /// The work, then its publication: what the leader polls inline or the task runs. A named
    /// future rather than an `async fn`, so the work is moved into it once, not into a
    /// generator and then again into a wrapper.
    struct Drive<K, T, E, F>
    where
        K: Hash,
        K: Eq,
        K: Clone,
        T: Clone,
        E: Clone,
    {
        #[pin]
        work: F,
        finish: Finish<K, T, E>,
    }
}

impl<K, T, E, F> Drive<K, T, E, F>
where
    K: Hash + Eq + Clone,
    T: Clone,
    E: Clone,
    F: Future<Output = Result<T, E>>,
{
    fn poll_drive(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        keep: bool,
    ) -> Poll<Option<Shared<T, E>>> {
        let this = self.project();
        if this.finish.done {
            return Poll::Ready(None);
        }
        let work = this.work;
        let result = match catch_unwind(AssertUnwindSafe(|| work.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Ok(value))) => Ok(value),
            Ok(Poll::Ready(Err(error))) => Err(Error::Failed(error)),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                tracing::warn!(panic = %message, "flight: shared execution panicked");
                Err(Error::Panicked(message))
            }
        };
        this.finish.done = true;
        Poll::Ready(complete(
            &this.finish.inner,
            &this.finish.call,
            result,
            true,
            keep,
        ))
    }
}

impl<K, T, E, F> Future for Drive<K, T, E, F>
where
    K: Hash + Eq + Clone,
    T: Clone,
    E: Clone,
    F: Future<Output = Result<T, E>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_drive(cx, false).map(drop)
    }
}

impl<K, T, E, F> Run<T, E> for Drive<K, T, E, F>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
    F: Future<Output = Result<T, E>> + Send + 'static,
{
    fn poll_run(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        keep: bool,
    ) -> Poll<Option<Shared<T, E>>> {
        self.poll_drive(cx, keep)
    }

    fn into_task(self: Pin<Box<Self>>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self
    }
}

pin_project! {
    /// Work run inside its leader's tracing span, inline or in its task, and dropped in it too
    /// (as `tracing`'s `Instrumented` does): an aborted work's event and its own destructors
    /// carry the request that started it.
    struct Spanned<R> {
        span: tracing::Span,
        #[pin]
        run: Slot<R>,
    }

    impl<R> PinnedDrop for Spanned<R> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let _entered = this.span.enter();
            // Dropped in place, inside the span.
            this.run.set(Slot::Gone);
        }
    }
}

pin_project! {
    /// The work of a [`Spanned`], until it is dropped.
    #[project = SlotProj]
    enum Slot<R> {
        Running { #[pin] run: R },
        Gone,
    }
}

impl<R: Future<Output = ()>> Future for Spanned<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let _entered = this.span.enter();
        match this.run.project() {
            SlotProj::Running { run } => run.poll(cx),
            SlotProj::Gone => Poll::Ready(()),
        }
    }
}

impl<T, E, R> Run<T, E> for Spanned<R>
where
    R: Run<T, E> + Future<Output = ()> + Send + 'static,
{
    fn poll_run(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        keep: bool,
    ) -> Poll<Option<Shared<T, E>>> {
        let this = self.project();
        let _entered = this.span.enter();
        match this.run.project() {
            SlotProj::Running { run } => run.poll_run(cx, keep),
            SlotProj::Gone => Poll::Ready(None),
        }
    }

    fn into_task(self: Pin<Box<Self>>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self
    }
}

/// Completes the call as aborted if the work is dropped before it finished.
struct Finish<K: Hash + Eq + Clone, T: Clone, E: Clone> {
    inner: Arc<Inner<K, T, E>>,
    call: Arc<Call<K, T, E>>,
    done: bool,
}

impl<K: Hash + Eq + Clone, T: Clone, E: Clone> Drop for Finish<K, T, E> {
    fn drop(&mut self) {
        if !self.done {
            tracing::debug!("flight: shared execution aborted");
            complete(&self.inner, &self.call, Err(Error::Aborted), true, false);
        }
    }
}
