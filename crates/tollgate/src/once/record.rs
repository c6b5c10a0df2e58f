//! Records, and what the store operations ask and answer.

use std::time::Duration;

use super::fingerprint::Fingerprint;
use crate::store::{Fence, Key, Owner, Timestamp, Token};

/// The stored state of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The fingerprint of the request that created the record.
    pub fingerprint: Fingerprint,
    /// The fence of the latest claim; it never decreases for a stored key.
    pub fence: Fence,
    /// Where the attempt stands.
    pub state: RecordState,
    /// When a finished record may be purged (`None` while it is not finished).
    pub expires_at: Option<Timestamp>,
}

impl Record {
    /// The token of the latest claimant, when the record still names one.
    pub fn holder(&self) -> Option<Token> {
        match self.state {
            RecordState::InProgress { owner, .. } | RecordState::Unknown { owner } => Some(Token {
                owner,
                fence: self.fence,
            }),
            _ => None,
        }
    }
}

/// Where an attempt stands: absent → in progress → completed | failed, or unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordState {
    /// A holder is running the work under a lease.
    InProgress {
        /// The holder.
        owner: Owner,
        /// The lease runs out at this instant unless renewed.
        lease_until: Timestamp,
    },
    /// The work succeeded; its serialized result.
    Completed {
        /// The serialized result.
        result: Vec<u8>,
    },
    /// The work failed; its serialized error. A retryable failure frees the key for the next
    /// claim, a permanent one is replayed.
    Failed {
        /// The serialized error.
        error: Vec<u8>,
        /// Whether the next claim may run the work again.
        retryable: bool,
    },
    /// The holder's lease ran out before it reported: the work may or may not have had its
    /// effect (a paid call may have been made). Kept until a caller decides.
    Unknown {
        /// The holder that vanished (it may still complete, which settles the question).
        owner: Owner,
    },
}

/// What a claim does with an attempt whose lease ran out (its outcome is unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnExpired {
    /// Take the key over with a higher fence and run the work again.
    #[default]
    TakeOver,
    /// Record the attempt as [`RecordState::Unknown`] and report it; nobody runs the work.
    MarkUnknown,
    /// Take over only from this holder (a reconcile hook decided to run its attempt again);
    /// any other lapsed holder is marked unknown as with [`OnExpired::MarkUnknown`].
    TakeOverFrom(Token),
}

/// One claim of a key. The store grants the lease from **its own** time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The key claimed.
    pub key: Key,
    /// The request's fingerprint.
    pub fingerprint: Fingerprint,
    /// The claimant.
    pub owner: Owner,
    /// How long a successful claim holds the key without renewal.
    pub lease: Duration,
    /// What to do with an expired attempt.
    pub on_expired: OnExpired,
    /// The fence of the attempt this claimant waits for: when that attempt has failed — even
    /// retryably, which frees the key — the claim answers its failure instead of acquiring,
    /// so a waiter receives the holder's own failure.
    pub waiting_for: Option<Fence>,
}

/// What a claim found, and whether it got the key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimOutcome {
    /// The claimant holds the key and must run the work.
    Acquired {
        /// The token to renew, complete or fail with.
        token: Token,
        /// The holder this claim took over from; its outcome is unknown.
        took_over: Option<Token>,
    },
    /// Another holder's lease is live.
    InProgress {
        /// The current holder.
        holder: Token,
        /// When its lease runs out.
        lease_until: Timestamp,
    },
    /// The work already succeeded.
    Completed {
        /// The serialized result.
        result: Vec<u8>,
    },
    /// The work already failed: permanently, or — for a claim
    /// [`waiting_for`](ClaimRequest::waiting_for) that attempt — retryably.
    Failed {
        /// The serialized error.
        error: Vec<u8>,
        /// Whether the failure freed the key.
        retryable: bool,
    },
    /// The key holds a record of a different request.
    Mismatch,
    /// An earlier attempt's outcome is unknown (see [`OnExpired::MarkUnknown`]).
    Unknown {
        /// The holder that vanished.
        previous: Token,
    },
}

/// How an attempt of unknown outcome is settled by hand or by a reconcile hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The work had its effect; this is its serialized result.
    Completed {
        /// The serialized result.
        result: Vec<u8>,
    },
    /// The work failed; a retryable failure frees the key for the next claim.
    Failed {
        /// The serialized error.
        error: Vec<u8>,
        /// Whether the next claim may run the work again.
        retryable: bool,
    },
}
