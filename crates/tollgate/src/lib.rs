//! # tollgate
//!
//! Concurrency-safety and resilience primitives for async (tokio) services that call slow,
//! flaky or paid dependencies: make an expensive operation happen **once per key**, cut off a
//! broken dependency, and make sure the fallback really runs.
//!
//! | module | what it gives you |
//! |---|---|
//! | [`breaker`] | circuit breaker with typed outcome classification, and a race-free registry |
//! | [`lock`] | leased locks across processes: fencing tokens the resource enforces, a lost-lease signal, owner-checked release |
//! | [`outbox`] | a durable outbox: effects applied by leased, fenced workers with retries and dead letters |
//! | [`policy`] | timeout, retry (backoff, jitter, budget), bulkhead, fallback and fail modes |
//! | [`plan`] | fan-out to nodes under policies, with field contracts checked before anything runs |
//! | [`flight`] | per-key coalescing: concurrent callers of one key share one execution |
//! | [`keyed`] | per-key resources (at most one creation per key) and per-key mutexes |
//! | [`once`] | exactly-once execution of a keyed operation, backed by a store |
//! | [`side`] | side tasks whose errors and panics never reach the caller; bounded, drained at shutdown |
//! | [`store`] | the vocabulary every store-backed primitive shares: keys, fences, the store's time, typed store errors, leases |
//! | [`versioned`] | optimistic compare-and-set with retry (versioned updates) |
//! | [`clock`] | the time source, injectable so time logic is tested without sleeping |
#![forbid(unsafe_code)]

pub mod breaker;
pub mod clock;
pub mod flight;
pub mod keyed;
pub mod lock;
pub mod once;
pub mod outbox;
pub mod plan;
pub mod policy;
pub mod side;
pub mod store;
mod sync;
pub mod versioned;

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
