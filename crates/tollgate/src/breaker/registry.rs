//! One breaker per name, however many tasks ask first at the same instant (S0).
//!
//! Reads go through an immutable map snapshot ([`arc_swap`]): an existing name is found without
//! taking any lock, so lookups of different names never contend. Creating a name takes the
//! registry's creation lock, looks again (another task may have created it meanwhile), then
//! publishes a new snapshot: two tasks can never build two breakers for one name, which is the
//! bug where each copy counted failures separately and the breaker never opened.
//!
//! Idle eviction removes a breaker only while nobody but the registry holds it, so a caller can
//! never keep using a breaker that a later `get` of the same name would not return.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{Breaker, BreakerConfig, ConfigError};
use crate::clock::Clock;

type Map = HashMap<Arc<str>, Arc<Entry>>;

struct Entry {
    breaker: Arc<Breaker>,
    /// Nanoseconds since the registry's origin at the last `get` (kept only with idle eviction).
    last_access: AtomicU64,
    evicting: AtomicBool,
}

/// What happened in a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryEvent {
    /// A breaker was created for this name.
    Created(Arc<str>),
    /// The breaker of this name was removed by [`Registry::remove`].
    Removed(Arc<str>),
    /// The breaker of this name was idle past the TTL and nobody held it.
    Evicted(Arc<str>),
    /// Every breaker was dropped by [`Registry::reset`].
    Reset,
}

/// Builds a [`Registry`].
#[derive(Debug, Default)]
pub struct RegistryBuilder {
    defaults: BreakerConfig,
    overrides: HashMap<String, BreakerConfig>,
    idle_ttl: Option<Duration>,
    clock: Clock,
}

impl RegistryBuilder {
    /// The configuration of every name without an override.
    pub fn defaults(mut self, config: BreakerConfig) -> Self {
        self.defaults = config;
        self
    }

    /// The configuration of one name.
    pub fn config_for(mut self, name: impl Into<String>, config: BreakerConfig) -> Self {
        self.overrides.insert(name.into(), config);
        self
    }

    /// Evict breakers that nobody holds and nobody asked for during `ttl`.
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = Some(ttl);
        self
    }

    /// The clock given to the breakers and used for idle eviction.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Validates every configuration and builds the registry.
    pub fn build(self) -> Result<Registry, ConfigError> {
        self.defaults.validate()?;
        self.overrides
            .values()
            .try_for_each(BreakerConfig::validate)?;
        Ok(Registry {
            map: ArcSwap::from_pointee(Map::new()),
            create: Mutex::new(()),
            events: broadcast::channel(1024).0,
            origin: self.clock.now(),
            builder: self,
        })
    }
}

/// A set of named breakers, one per name however many tasks ask first at once: lookups of an
/// existing name take no lock; creation is serialised and re-checks. See [`crate::breaker`].
pub struct Registry {
    map: ArcSwap<Map>,
    create: Mutex<()>,
    events: broadcast::Sender<RegistryEvent>,
    origin: Instant,
    builder: RegistryBuilder,
}

impl Registry {
    /// A registry with default breaker settings.
    pub fn new() -> Self {
        Registry::builder()
            .build()
            .unwrap_or_else(|_| unreachable!("defaults are valid"))
    }

    /// Starts building a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The process-wide registry (default settings), created on first use.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(Registry::new)
    }

    /// The breaker for `name`, created on first request. Every caller gets the same `Arc`.
    pub fn get(&self, name: &str) -> Arc<Breaker> {
        if let Some(found) = self.lookup(name) {
            return found;
        }
        self.get_or_create(name)
    }

    /// The breaker for `name` if it exists.
    pub fn find(&self, name: &str) -> Option<Arc<Breaker>> {
        self.lookup(name)
    }

    fn lookup(&self, name: &str) -> Option<Arc<Breaker>> {
        let map = self.map.load();
        let entry = map.get(name)?;
        let breaker = entry.breaker.clone();
        if self.builder.idle_ttl.is_none() {
            return Some(breaker);
        }
        entry.last_access.store(self.now_nanos(), Ordering::Relaxed);
        // Pairs with the fence in `evict_idle`: either the evictor sees our clone in the strong
        // count and keeps the entry, or we see its flag and take the slow path.
        fence(Ordering::SeqCst);
        if entry.evicting.load(Ordering::Relaxed) {
            return None;
        }
        Some(breaker)
    }

    fn get_or_create(&self, name: &str) -> Arc<Breaker> {
        let _creating = self.lock();
        if let Some(found) = self.lookup(name) {
            return found;
        }
        let config = self
            .builder
            .overrides
            .get(name)
            .unwrap_or(&self.builder.defaults);
        let breaker = Breaker::with_clock(name, config.clone(), self.builder.clock.clone())
            .map(Arc::new)
            .unwrap_or_else(|_| unreachable!("configurations are validated by the builder"));
        let key: Arc<str> = Arc::from(name);
        let entry = Arc::new(Entry {
            breaker: breaker.clone(),
            last_access: AtomicU64::new(self.now_nanos()),
            evicting: AtomicBool::new(false),
        });
        let mut next = Map::clone(&self.map.load());
        next.insert(key.clone(), entry);
        self.map.store(Arc::new(next));
        tracing::debug!(breaker = %key, "circuit breaker created");
        let _ = self.events.send(RegistryEvent::Created(key));
        breaker
    }

    /// Removes `name`'s breaker. Tasks still holding it keep a detached breaker; the next `get`
    /// creates a fresh one. Returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        let _creating = self.lock();
        let mut next = Map::clone(&self.map.load());
        let Some((key, _)) = next.remove_entry(name) else {
            return false;
        };
        self.map.store(Arc::new(next));
        let _ = self.events.send(RegistryEvent::Removed(key));
        true
    }

    /// Evicts the breakers idle for longer than the TTL that nobody else holds; returns how many.
    /// Runs only when asked (no timer thread); does nothing without an idle TTL.
    pub fn evict_idle(&self) -> usize {
        let Some(ttl) = self.builder.idle_ttl else {
            return 0;
        };
        let _creating = self.lock();
        let now = self.now_nanos();
        let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        let current = self.map.load_full();
        let mut next = Map::clone(&current);
        let mut evicted = Vec::new();
        for (name, entry) in current.iter() {
            let idle = now.saturating_sub(entry.last_access.load(Ordering::Relaxed)) >= ttl;
            if !idle {
                continue;
            }
            entry.evicting.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if Arc::strong_count(&entry.breaker) == 1 {
                next.remove(name);
                evicted.push(name.clone());
            } else {
                entry.evicting.store(false, Ordering::Relaxed);
            }
        }
        if !evicted.is_empty() {
            self.map.store(Arc::new(next));
        }
        for name in &evicted {
            tracing::debug!(breaker = %name, "idle circuit breaker evicted");
            let _ = self.events.send(RegistryEvent::Evicted(name.clone()));
        }
        evicted.len()
    }

    /// Drops every breaker (for tests). Holders keep detached breakers.
    pub fn reset(&self) {
        let _creating = self.lock();
        self.map.store(Arc::new(Map::new()));
        let _ = self.events.send(RegistryEvent::Reset);
    }

    /// How many names have a breaker.
    pub fn len(&self) -> usize {
        self.map.load().len()
    }

    /// Whether no name has a breaker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names that have a breaker, in no particular order.
    pub fn names(&self) -> Vec<Arc<str>> {
        self.map.load().keys().cloned().collect()
    }

    /// Receives registry events from now on (a receiver more than 1,024 events behind loses the
    /// oldest).
    pub fn subscribe(&self) -> broadcast::Receiver<RegistryEvent> {
        self.events.subscribe()
    }

    fn now_nanos(&self) -> u64 {
        let since = self
            .builder
            .clock
            .now()
            .saturating_duration_since(self.origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.create
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("breakers", &self.len())
            .field("idle_ttl", &self.builder.idle_ttl)
            .finish_non_exhaustive()
    }
}
