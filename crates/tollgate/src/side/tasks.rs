//! [`SideTasks`]: the supervisor of side tasks.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;

use crate::outbox::{Effect, EffectId, Outbox};
use crate::store::StoreError;

/// Bounds of a [`SideTasks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SideOptions {
    /// Side tasks running at once (default 64).
    pub max_in_flight: usize,
    /// Side tasks waiting for a slot before new ones are refused or sent to the outbox
    /// (default 1,024).
    pub max_queued: usize,
}

impl Default for SideOptions {
    fn default() -> Self {
        SideOptions {
            max_in_flight: 64,
            max_queued: 1_024,
        }
    }
}

/// What [`SideTasks::spawn`] did with a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a refused side task did not run"]
pub enum Spawned {
    /// It runs (or waits in the queue for a slot).
    Accepted,
    /// Every slot and the queue were full, or the supervisor is shutting down: it did not run.
    Refused,
    /// It could not run now and was enqueued in the outbox instead.
    ToOutbox,
}

/// What [`SideTasks::shutdown`] found, counted since the supervisor was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Tasks that finished successfully.
    pub ok: u64,
    /// Tasks that returned an error (caught, logged, counted).
    pub failed: u64,
    /// Tasks that panicked (caught, logged, counted).
    pub panicked: u64,
    /// Effects sent to the outbox (refused for lack of room, failed, or not finished by the
    /// shutdown deadline).
    pub to_outbox: u64,
    /// Tasks still running at the deadline and aborted (plain tasks: they are lost).
    pub aborted: u64,
    /// Tasks refused.
    pub refused: u64,
}

type Enqueue = dyn Fn(Effect) -> Pin<Box<dyn Future<Output = Result<EffectId, StoreError>> + Send>>
    + Send
    + Sync;

/// Runs side tasks detached from their callers; see the [module](super) docs. Cheap to clone.
#[derive(Clone)]
pub struct SideTasks {
    inner: Arc<Inner>,
}

struct Inner {
    options: SideOptions,
    slots: Arc<Semaphore>,
    closed: AtomicBool,
    next: AtomicU64,
    running: Mutex<HashMap<u64, Running>>,
    count: watch::Sender<usize>,
    tally: Mutex<Drained>,
    outbox: Option<Box<Enqueue>>,
}

struct Running {
    abort: AbortHandle,
    effect: Option<Effect>,
}

impl SideTasks {
    /// A supervisor without an outbox: refused or unfinished tasks are counted and dropped.
    pub fn new(options: SideOptions) -> Self {
        Self::build(options, None)
    }

    /// A supervisor that sends effects it cannot run, or that failed or did not finish by the
    /// shutdown deadline, to `outbox`.
    pub fn with_outbox<O: Outbox>(options: SideOptions, outbox: O) -> Self {
        let outbox = Arc::new(outbox);
        let enqueue: Box<Enqueue> = Box::new(move |effect| {
            let outbox = Arc::clone(&outbox);
            Box::pin(async move { outbox.enqueue(effect).await })
        });
        Self::build(options, Some(enqueue))
    }

    fn build(options: SideOptions, outbox: Option<Box<Enqueue>>) -> Self {
        SideTasks {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
                options,
                closed: AtomicBool::new(false),
                next: AtomicU64::new(0),
                running: Mutex::default(),
                count: watch::Sender::new(0),
                tally: Mutex::default(),
                outbox,
            }),
        }
    }

    /// Runs `task` detached: its error or panic is logged with `name` and `key`, counted, and
    /// never reaches the caller. Returns at once.
    pub fn spawn<F, E>(&self, name: &'static str, key: impl fmt::Display, task: F) -> Spawned
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        self.start(name, key.to_string(), None, task)
    }

    /// Runs `run(effect)` detached like [`spawn`](Self::spawn); when it cannot run now, fails,
    /// or has not finished by the shutdown deadline, `effect` is enqueued in the outbox (given
    /// to [`SideTasks::with_outbox`]) so a worker applies it later.
    pub fn spawn_effect<R, F, E>(&self, name: &'static str, effect: Effect, run: R) -> Spawned
    where
        R: FnOnce(Effect) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let key = effect.key.to_string();
        let task = run(effect.clone());
        self.start(name, key, Some(effect), task)
    }

    fn start<F, E>(
        &self,
        name: &'static str,
        key: String,
        effect: Option<Effect>,
        task: F,
    ) -> Spawned
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let inner = &self.inner;
        let queued = inner.options.max_in_flight.max(1) + inner.options.max_queued;
        // Checked and counted in one step under the count's lock, so two spawners cannot both
        // take the last place, and a shutdown that saw no task in flight never sees one start
        // after it (it closes before it reads the count under the same lock).
        let admitted = inner.count.send_if_modified(|n| {
            let admit = !inner.closed.load(Ordering::SeqCst) && *n < queued;
            if admit {
                *n += 1;
                gauge(1.0);
            }
            admit
        });
        if !admitted {
            return self.refuse(name, &key, effect);
        }
        let id = inner.next.fetch_add(1, Ordering::SeqCst);
        let slots = Arc::clone(&inner.slots);
        let work = tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            task.await
        });
        let abort = work.abort_handle();
        let supervisor = self.clone();
        self.running().insert(id, Running { abort, effect });
        tokio::spawn(async move {
            let outcome = work.await;
            supervisor.finished(id, name, &key, outcome).await;
        });
        Spawned::Accepted
    }

    fn refuse(&self, name: &'static str, key: &str, effect: Option<Effect>) -> Spawned {
        if let (Some(effect), Some(_)) = (effect, &self.inner.outbox) {
            let supervisor = self.clone();
            let key = key.to_owned();
            // Counted in flight until it is in the outbox, so a shutdown waits for it.
            self.add_in_flight(1);
            tokio::spawn(async move {
                supervisor.to_outbox(name, &key, effect).await;
                supervisor.add_in_flight(-1);
            });
            return Spawned::ToOutbox;
        }
        tracing::warn!(name, key, "side task refused: no room");
        self.tally("refused", name, |t| t.refused += 1);
        Spawned::Refused
    }

    async fn finished<E: fmt::Display>(
        &self,
        id: u64,
        name: &'static str,
        key: &str,
        outcome: Result<Result<(), E>, tokio::task::JoinError>,
    ) {
        let effect = self.running().remove(&id).and_then(|r| r.effect);
        match outcome {
            Ok(Ok(())) => self.tally("ok", name, |t| t.ok += 1),
            Ok(Err(e)) => {
                tracing::warn!(name, key, error = %e, "side task failed");
                self.tally("failed", name, |t| t.failed += 1);
                if let Some(effect) = effect {
                    self.to_outbox(name, key, effect).await;
                }
            }
            Err(e) if e.is_panic() => {
                tracing::error!(name, key, "side task panicked");
                self.tally("panicked", name, |t| t.panicked += 1);
                if let Some(effect) = effect {
                    self.to_outbox(name, key, effect).await;
                }
            }
            Err(_) => {} // aborted by shutdown: counted there
        }
        self.add_in_flight(-1);
    }

    /// Moves the count of tasks in flight (running, queued, or on their way to the outbox) and
    /// the gauge `tollgate_side_tasks_in_flight` with it.
    fn add_in_flight(&self, delta: isize) {
        self.inner.count.send_modify(|n| {
            *n = n.saturating_add_signed(delta);
            #[allow(clippy::cast_precision_loss)] // ±1
            gauge(delta as f64);
        });
    }

    async fn to_outbox(&self, name: &'static str, key: &str, effect: Effect) {
        let Some(enqueue) = &self.inner.outbox else {
            return;
        };
        match enqueue(effect).await {
            Ok(id) => {
                tracing::info!(name, key, effect = id.0, "side task sent to the outbox");
                self.tally("to_outbox", name, |t| t.to_outbox += 1);
            }
            Err(e) => {
                tracing::error!(name, key, error = %e, "side task lost: the outbox failed");
                self.tally("aborted", name, |t| t.aborted += 1);
            }
        }
    }

    /// Stops taking tasks, waits up to `deadline` for the running and queued ones, then aborts
    /// the rest — sending each unfinished effect to the outbox — and returns the tally.
    pub async fn shutdown(&self, deadline: Duration) -> Drained {
        self.inner.closed.store(true, Ordering::SeqCst);
        let mut count = self.inner.count.subscribe();
        let timed_out = tokio::time::timeout(deadline, count.wait_for(|n| *n == 0))
            .await
            .is_err();
        if timed_out {
            let left: Vec<Running> = self.running().drain().map(|(_, r)| r).collect();
            for running in left {
                running.abort.abort();
                match running.effect {
                    Some(effect) => {
                        let key = effect.key.to_string();
                        self.to_outbox("shutdown", &key, effect).await;
                    }
                    None => self.tally("aborted", "shutdown", |t| t.aborted += 1),
                }
            }
            let _ = count.wait_for(|n| *n == 0).await;
        }
        *self.tally_lock()
    }

    /// Tasks running or queued now.
    pub fn in_flight(&self) -> usize {
        *self.inner.count.borrow()
    }

    fn running(&self) -> MutexGuard<'_, HashMap<u64, Running>> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn tally_lock(&self) -> MutexGuard<'_, Drained> {
        self.inner
            .tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn tally(&self, outcome: &'static str, name: &'static str, add: impl FnOnce(&mut Drained)) {
        add(&mut self.tally_lock());
        metrics::counter!("tollgate_side_tasks_total", "name" => name, "outcome" => outcome)
            .increment(1);
    }
}

/// Moves `tollgate_side_tasks_in_flight` by `delta`, under the count's lock. Moved rather than
/// set, so that every supervisor of the process adds its own tasks to the one gauge.
fn gauge(delta: f64) {
    metrics::gauge!("tollgate_side_tasks_in_flight").increment(delta);
}

impl fmt::Debug for SideTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SideTasks")
            .field("options", &self.inner.options)
            .field("in_flight", &self.in_flight())
            .field("outbox", &self.inner.outbox.is_some())
            .finish()
    }
}
