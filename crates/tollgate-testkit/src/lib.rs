//! The conformance suite every `tollgate` store backend runs unchanged.
//!
//! A backend implements [`Backend`] (fresh database, handles onto it, a way to move the
//! store's clock) and writes one line in its tests:
//!
//! ```ignore
//! async fn backend() -> MyBackend { MyBackend::start().await }
//! tollgate_testkit::conformance!(backend);
//! ```
//!
//! That makes one test per case, named `conformance::<case>`, so `cargo test --
//! conformance::` lists every case once per backend and a failure names its case. The cases
//! are the public functions of this crate ([`absent_claim_acquires_fence_one`], …,
//! [`clock_skew_of_engines_never_takes_over_a_live_lease`]): store-level transitions,
//! engine-level behaviour ([`tollgate::once::Once`] over the backend), and claim races of 1,000
//! tasks. The scenario helpers ([`s3`]) run the engine over a backend the same way on every
//! backend.
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
//!
//! # HTTP servers
//!
//! With the feature `http-servers`, the module `http_servers` starts loopback HTTP/1.1 and HTTP/2
//! servers (plain or TLS, self-signed) running a small application: the S3 bug's racy report
//! endpoint and its guarded fix, one that never answers, one that hangs up, and any handler you
//! write. The race tester's tests and the CLI's use them.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backend;
pub mod bench;
mod cases;
pub mod child;
mod counting;
mod engine;
mod fault;
mod gate;
#[cfg(feature = "http-servers")]
pub mod http_servers;
mod lock_cases;
pub mod lock_faults;
mod outbox_cases;
mod race;
pub mod s2_lock;
pub mod s3;
pub mod server;

pub use backend::{Backend, MemoryBackend};
pub use cases::*;
pub use counting::{Counting, Pause};
pub use engine::*;
pub use fault::Unreachable;
pub use gate::release_together;
pub use lock_cases::*;
pub use outbox_cases::*;
pub use race::claim_race;

/// Generates the conformance suite for a backend: one `#[tokio::test]` per case in a module
/// `conformance`, each on a fresh backend made by the async function `$make` (a sibling of
/// the macro call, returning a [`Backend`]).
#[macro_export]
macro_rules! conformance {
    ($make:ident) => {
        /// The store conformance suite, one test per case.
        mod conformance {
            $crate::__conformance_cases!($make;
                absent_claim_acquires_fence_one,
                live_claim_reports_the_holder,
                lease_expires_exactly_on_the_store_clock,
                completed_key_replays_its_result,
                other_fingerprint_is_a_mismatch,
                renewal_extends_the_lease_of_the_holder_only,
                expired_lease_is_taken_over_and_the_old_holder_fenced,
                expired_lease_is_marked_unknown_until_decided,
                take_over_from_takes_over_only_that_holder,
                unknown_attempt_settled_by_its_late_holder,
                resolve_settles_only_an_unknown_attempt,
                unbounded_lease_and_retention_are_kept,
                retryable_failure_frees_the_key,
                waiter_receives_the_failure_it_waited_for,
                permanent_failure_is_replayed,
                retention_expiry_frees_the_key_and_purge_removes_it,
                purged_then_reclaimed_key_fences_the_old_owner,
                keys_are_namespaced_not_concatenated,
                a_long_key_of_wide_characters_is_completed_and_replayed,
                run_replays_rejects_and_stores_failures,
                wait_mode_polls_a_holder_in_another_engine,
                wait_mode_waiter_receives_the_holders_own_failure,
                clock_skew_of_engines_never_takes_over_a_live_lease,
                reconcile_hook_done_settles_the_key_without_rerunning,
                reconcile_run_again_reruns_exactly_once_under_a_race,
                settle_by_hand_resolves_only_an_unknown_key,
            );

            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn claim_race_of_1000_tasks_acquires_exactly_once() {
                let backend = super::$make().await;
                $crate::claim_race(&backend, 1, 1_000).await;
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn claim_race_of_1000_tasks_over_4_handles_acquires_exactly_once() {
                let backend = super::$make().await;
                $crate::claim_race(&backend, 4, 1_000).await;
            }
        }
    };
}

/// Generates the outbox conformance suite for an outbox backend: one `#[tokio::test]` (on the
/// multi-thread runtime) per case in a module `s4_outbox_conformance` (so that `cargo test -- s4_` lists
/// them with the rest of S4's proof), each on a fresh backend
/// made by the async function `$make` (a sibling of the macro call, returning an
/// [`OutboxBackend`]). The cases are the `outbox_*` functions of this crate: retries, dead
/// letters and re-queues with exact attempt counts, a stalled worker fenced, an effect whose
/// workers keep crashing dead-lettered after its last attempt, a batch's
/// completions fenced one by one, eight workers applying 200 effects once each.
#[macro_export]
macro_rules! outbox_conformance {
    ($make:ident) => {
        /// The outbox conformance suite, one test per case.
        mod s4_outbox_conformance {
            $crate::__conformance_cases!($make;
                outbox_save_failing_three_times_is_retried_and_saved_exactly_once,
                outbox_save_always_failing_is_dead_lettered_then_requeued_and_saved_once,
                outbox_a_worker_stalled_past_its_lease_is_fenced_and_the_save_applied_once,
                outbox_an_effect_whose_workers_keep_crashing_is_dead_lettered_after_its_last_attempt,
                outbox_a_batch_with_one_effect_taken_over_completes_the_rest_and_fences_that_one,
                outbox_complete_all_fences_each_completion_by_its_own_token,
                outbox_eight_workers_on_their_own_handles_apply_200_effects_once_each,
            );
        }
    };
}

/// One test per listed case; used by [`conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($make:ident; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend = super::$make().await;
                $crate::$case(&backend).await;
            }
        )*
    };
}

/// Generates the lock conformance suite for a lock backend: one `#[tokio::test]` per case in
/// a module `lock_conformance`, each on a fresh backend made by the async function `$make` (a
/// sibling of the macro call, returning a [`LockBackend`]). Every case runs on the multi-thread
/// runtime.
#[macro_export]
macro_rules! lock_conformance {
    ($make:ident) => {
        /// The lock conformance suite, one test per case.
        mod lock_conformance {
            $crate::__conformance_cases!($make;
                fence_strictly_increases_over_1000_cycles,
                try_acquire_race_of_500_tasks_has_exactly_one_holder,
                store_acquire_race_of_500_tasks_acquires_exactly_once,
                release_by_a_non_holder_is_rejected,
                expired_lease_is_taken_over_at_its_end,
                lock_renewal_extends_only_the_holders_lease,
                waiter_gets_the_key_on_release_or_times_out,
                lost_signal_fires_when_the_store_fences_the_holder,
                mutual_exclusion_of_1000_tasks_over_10_keys,
                hand_over_moves_the_key_to_the_next_owner_with_the_next_fence,
            );
        }
    };
}
