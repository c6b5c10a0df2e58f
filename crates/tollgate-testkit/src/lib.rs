//! The conformance suite every `tollgate` store backend runs unchanged.
//!
//! A backend's `tests/conformance.rs` calls [`conformance`] with a function that makes a fresh,
//! empty store, and [`claim_race`] (and [`claim_race_across`] when several handles reach one database) on a
//! multi-thread runtime. The scenario helpers ([`s3`])
//! run the engine over a backend the same way on every backend.
//!
//! Every case asserts exact outcomes and panics on the first difference: these are test
//! helpers, and a panic is their failure report.
//!
//! # Servers
//!
//! [`server`] starts throw-away PostgreSQL and Redis servers for a backend's tests:
//! [`server::PostgresServer`] (`initdb` into a temporary directory, `postgres` on a free port of
//! 127.0.0.1, superuser `postgres`, `fsync` on unless opted out) and [`server::RedisServer`]
//! (`redis-server` on a free loopback port, no persistence unless
//! [`server::RedisOptions::append_only`]). Both wait until the server answers, inject faults
//! (`kill`, `pause`, `resume`, `stop`, `restart` on the same port and data), and kill the server
//! and remove its directory when dropped. They never use the ports 5432 and 6379. A missing
//! binary is an error naming the package to install (`apt-get install postgresql`,
//! `apt-get install redis-server`).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cases;
mod counting;
mod engine;
mod gate;
mod race;
pub mod s3;
pub mod server;

pub use cases::*;
pub use counting::Counting;
pub use engine::{
    run_replays_rejects_and_stores_failures, wait_mode_polls_a_holder_in_another_engine,
};
pub use gate::release_together;
pub use race::{claim_race, claim_race_across};

use std::future::Future;

use tollgate::once::Store;

/// Runs every sequential case of the suite, each on a fresh, empty store from `make`.
pub async fn conformance<S, F, Fut>(make: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    absent_claim_acquires_fence_one(make().await).await;
    live_claim_reports_the_holder(make().await).await;
    completed_key_replays_its_result(make().await).await;
    other_fingerprint_is_a_mismatch(make().await).await;
    renewal_extends_the_lease_of_the_holder_only(make().await).await;
    expired_lease_is_taken_over_and_the_old_holder_fenced(make().await).await;
    expired_lease_is_marked_unknown_until_decided(make().await).await;
    unknown_attempt_settled_by_its_late_holder(make().await).await;
    retryable_failure_frees_the_key(make().await).await;
    permanent_failure_is_replayed(make().await).await;
    retention_expiry_frees_the_key_and_purge_removes_it(make().await).await;
    purged_then_reclaimed_key_fences_the_old_owner(make().await).await;
    keys_are_namespaced_not_concatenated(make().await).await;
}
