//! Records, and what the store operations ask and answer.

use super::key::{Fence, Fingerprint, Key, Owner, Timestamp, Token};

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
}

/// One claim of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The key claimed.
    pub key: Key,
    /// The request's fingerprint.
    pub fingerprint: Fingerprint,
    /// The claimant.
    pub owner: Owner,
    /// The lease a successful claim gets.
    pub lease_until: Timestamp,
    /// The current time, as the claimant sees it.
    pub now: Timestamp,
    /// What to do with an expired attempt.
    pub on_expired: OnExpired,
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
    /// The work already failed permanently.
    Failed {
        /// The serialized error.
        error: Vec<u8>,
    },
    /// The key holds a record of a different request.
    Mismatch,
    /// An earlier attempt's outcome is unknown (see [`OnExpired::MarkUnknown`]).
    Unknown {
        /// The holder that vanished.
        previous: Token,
    },
}

/// The answer to a holder's renew, complete or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a fenced holder must stop acting as the holder"]
pub enum Settle {
    /// The record accepted the holder's write.
    Done,
    /// The holder no longer holds the key (taken over, finished or purged): its write was
    /// rejected.
    Fenced,
}
