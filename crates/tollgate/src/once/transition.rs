//! The record's state machine as pure functions: what every store writes for every operation.
//!
//! A store applies one of these to the current record inside one atomic step (a lock held for a
//! map operation, one `BEGIN IMMEDIATE` transaction, one Lua script), so the rules live in one
//! place and every backend agrees on them. A backend that cannot run Rust inside its atomic step
//! (a PostgreSQL `INSERT … ON CONFLICT … DO UPDATE … WHERE …`) encodes the same table, and the
//! conformance suite checks that it does.

use super::key::{Fence, Timestamp, Token};
use super::record::{ClaimOutcome, ClaimRequest, OnExpired, Record, RecordState};

/// What a claim answers, and the record to store afterwards (`None`: leave it as it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimTransition {
    /// The answer to the claimant.
    pub outcome: ClaimOutcome,
    /// The record to write, if the claim changes it.
    pub write: Option<Record>,
}

/// Applies a claim to the key's current record.
pub fn claim(existing: Option<&Record>, req: &ClaimRequest) -> ClaimTransition {
    let Some(record) = existing else {
        return acquire(req, Fence(1), None);
    };
    let expired = record.expires_at.is_some_and(|at| at <= req.now);
    let freed = matches!(
        record.state,
        RecordState::Failed {
            retryable: true,
            ..
        }
    );
    if expired || freed {
        return acquire(req, next(record.fence), None);
    }
    if record.fingerprint != req.fingerprint {
        return answer(ClaimOutcome::Mismatch);
    }
    match &record.state {
        RecordState::InProgress { owner, lease_until } if *lease_until > req.now => {
            answer(ClaimOutcome::InProgress {
                holder: Token {
                    owner: *owner,
                    fence: record.fence,
                },
                lease_until: *lease_until,
            })
        }
        RecordState::InProgress { owner, .. } | RecordState::Unknown { owner } => {
            lapsed(record, *owner, req)
        }
        RecordState::Completed { result } => answer(ClaimOutcome::Completed {
            result: result.clone(),
        }),
        RecordState::Failed { error, .. } => answer(ClaimOutcome::Failed {
            error: error.clone(),
        }),
    }
}

/// A claim finding an attempt whose holder's lease ran out.
fn lapsed(record: &Record, owner: super::key::Owner, req: &ClaimRequest) -> ClaimTransition {
    let previous = Token {
        owner,
        fence: record.fence,
    };
    match req.on_expired {
        OnExpired::TakeOver => acquire(req, next(record.fence), Some(previous)),
        OnExpired::MarkUnknown => ClaimTransition {
            outcome: ClaimOutcome::Unknown { previous },
            write: (!matches!(record.state, RecordState::Unknown { .. })).then(|| Record {
                state: RecordState::Unknown { owner },
                ..record.clone()
            }),
        },
    }
}

fn acquire(req: &ClaimRequest, fence: Fence, took_over: Option<Token>) -> ClaimTransition {
    ClaimTransition {
        outcome: ClaimOutcome::Acquired {
            token: Token {
                owner: req.owner,
                fence,
            },
            took_over,
        },
        write: Some(Record {
            fingerprint: req.fingerprint.clone(),
            fence,
            state: RecordState::InProgress {
                owner: req.owner,
                lease_until: req.lease_until,
            },
            expires_at: None,
        }),
    }
}

fn answer(outcome: ClaimOutcome) -> ClaimTransition {
    ClaimTransition {
        outcome,
        write: None,
    }
}

fn next(fence: Fence) -> Fence {
    Fence(fence.0.saturating_add(1))
}

/// The holder's record after it changes to `state`, or `None` when `token` no longer holds it
/// (the write is fenced). An expired lease that nobody took over still belongs to its holder.
fn settle(existing: Option<&Record>, token: Token, state: RecordState) -> Option<Record> {
    let record = existing?;
    (record.holder() == Some(token)).then(|| Record {
        state,
        ..record.clone()
    })
}

/// Extends the holder's lease; `None` when the holder was fenced.
pub fn renew(existing: Option<&Record>, token: Token, lease_until: Timestamp) -> Option<Record> {
    let state = RecordState::InProgress {
        owner: token.owner,
        lease_until,
    };
    settle(existing, token, state)
}

/// Stores the holder's result; `None` when the holder was fenced.
pub fn complete(
    existing: Option<&Record>,
    token: Token,
    result: Vec<u8>,
    expires_at: Timestamp,
) -> Option<Record> {
    let record = settle(existing, token, RecordState::Completed { result })?;
    Some(Record {
        expires_at: Some(expires_at),
        ..record
    })
}

/// Stores the holder's failure; `None` when the holder was fenced.
pub fn fail(
    existing: Option<&Record>,
    token: Token,
    error: Vec<u8>,
    retryable: bool,
    expires_at: Timestamp,
) -> Option<Record> {
    let record = settle(existing, token, RecordState::Failed { error, retryable })?;
    Some(Record {
        expires_at: Some(expires_at),
        ..record
    })
}

/// Whether a purge at `now` removes the record: finished and past its retention.
pub fn is_purgeable(record: &Record, now: Timestamp) -> bool {
    record.expires_at.is_some_and(|at| at <= now)
}
