//! The vocabulary every store-backed primitive shares: keys, owners, fences, tokens, the
//! store's own time, typed store errors, and the lease that keeps a claim alive.
//!
//! [`once`](crate::once) uses it now; leased locks and the outbox build on the same words, so a
//! backend (SQLite, PostgreSQL, Redis) speaks one language to every primitive.
//!
//! # The store's clock decides
//! Leases and retention are passed to a store as **durations**. Whether a lease has expired is
//! judged by the store's own time — [`Timeline`] for in-process and embedded stores (the host's
//! wall clock, or an injected [`Clock`](crate::clock::Clock) in tests), the server's clock for
//! a database server — never by the caller's. Two machines whose clocks disagree by seconds
//! therefore cannot take over each other's live leases: both ask the same clock. The proof is
//! the conformance case `clock_skew_of_engines_never_takes_over_a_live_lease`, run on every
//! backend.
//!
//! # Errors
//! [`StoreError::kind`] says what went wrong in backend-neutral terms ([`StoreErrorKind`]):
//! callers match on it (retry on [`StoreErrorKind::Busy`], answer 503 on
//! [`StoreErrorKind::Unavailable`]) instead of walking `source()` or reading messages.

mod error;
mod key;
pub mod lease;
mod time;

pub use error::{StoreError, StoreErrorKind};
pub use key::{Fence, Key, Owner, Token};
pub use lease::{LeaseLost, LeaseTiming, LostReason};
pub use time::{Timeline, Timestamp};

/// The answer to a fenced write (renew, complete, fail, resolve): accepted, or rejected
/// because the writer no longer holds the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a fenced holder must stop acting as the holder"]
pub enum Settle {
    /// The store accepted the holder's write.
    Accepted,
    /// The writer no longer holds the key (taken over, finished or purged): its write was
    /// rejected and nothing changed.
    Fenced,
}
