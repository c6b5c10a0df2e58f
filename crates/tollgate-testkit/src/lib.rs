//! The conformance suite every `tollgate` store backend runs unchanged.
//!
//! A backend's `tests/conformance.rs` calls [`conformance`] with a function that makes a fresh,
//! empty store, and [`claim_race`] on a multi-thread runtime. The scenario helpers ([`s3`])
//! run the engine over a backend the same way on every backend.
//!
//! Every case asserts exact outcomes and panics on the first difference: these are test
//! helpers, and a panic is their failure report.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cases;
mod race;
pub mod s3;

pub use cases::*;
pub use race::claim_race;

use tollgate::once::Store;

/// Runs every sequential case of the suite, each on a fresh store from `make`.
pub async fn conformance<S: Store>(make: impl Fn() -> S) {
    absent_claim_acquires_fence_one(make()).await;
    live_claim_reports_the_holder(make()).await;
    completed_key_replays_its_result(make()).await;
    other_fingerprint_is_a_mismatch(make()).await;
    renewal_extends_the_lease_of_the_holder_only(make()).await;
    expired_lease_is_taken_over_and_the_old_holder_fenced(make()).await;
    expired_lease_is_marked_unknown_until_decided(make()).await;
    unknown_attempt_settled_by_its_late_holder(make()).await;
    retryable_failure_frees_the_key(make()).await;
    permanent_failure_is_replayed(make()).await;
    retention_expiry_frees_the_key_and_purge_removes_it(make()).await;
    purged_then_reclaimed_key_fences_the_old_owner(make()).await;
    keys_are_namespaced_not_concatenated(make()).await;
}
