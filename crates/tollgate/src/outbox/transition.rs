//! The effect record's state machine as pure functions, applied by every outbox store inside
//! one atomic step with **its own** time as `now` (as [`crate::once::transition`] is for
//! exactly-once records).

use std::time::Duration;

use super::effect::{EffectRecord, EffectState};
use crate::store::{Fence, Owner, Timestamp, Token};

/// Whether a worker may claim the record at `now`: pending and visible, or in flight under a
/// lease that ran out (its worker vanished or stalled).
pub fn is_claimable(record: &EffectRecord, now: Timestamp) -> bool {
    match record.state {
        EffectState::Pending { visible_at } => visible_at <= now,
        EffectState::InFlight { lease_until, .. } => lease_until <= now,
        _ => false,
    }
}

/// The record after `owner` claims it at `now` for `lease`: a new fence, one more attempt.
pub fn claim(record: &EffectRecord, owner: Owner, lease: Duration, now: Timestamp) -> EffectRecord {
    EffectRecord {
        state: EffectState::InFlight {
            owner,
            lease_until: now.plus(lease),
        },
        attempts: record.attempts.saturating_add(1),
        fence: Fence(record.fence.0.saturating_add(1)),
        ..record.clone()
    }
}

fn held(record: &EffectRecord, token: Token) -> bool {
    record.holder() == Some(token)
}

/// The holder's heartbeat: its lease extended to `lease` from `now`; `None` when fenced.
pub fn heartbeat(
    record: &EffectRecord,
    token: Token,
    lease: Duration,
    now: Timestamp,
) -> Option<EffectRecord> {
    held(record, token).then(|| EffectRecord {
        state: EffectState::InFlight {
            owner: token.owner,
            lease_until: now.plus(lease),
        },
        ..record.clone()
    })
}

/// Applied, with the handler's receipt; `None` when fenced (a zombie's "done" is rejected).
pub fn complete(record: &EffectRecord, token: Token, receipt: Vec<u8>) -> Option<EffectRecord> {
    held(record, token).then(|| EffectRecord {
        state: EffectState::Done { receipt },
        ..record.clone()
    })
}

/// Back to pending, visible again `after` from `now`; `None` when fenced.
pub fn retry(
    record: &EffectRecord,
    token: Token,
    error: String,
    after: Duration,
    now: Timestamp,
) -> Option<EffectRecord> {
    held(record, token).then(|| EffectRecord {
        state: EffectState::Pending {
            visible_at: now.plus(after),
        },
        last_error: Some(error),
        ..record.clone()
    })
}

/// Dead-lettered with its last error; `None` when fenced.
pub fn dead_letter(record: &EffectRecord, token: Token, error: String) -> Option<EffectRecord> {
    held(record, token).then(|| EffectRecord {
        state: EffectState::Dead,
        last_error: Some(error),
        ..record.clone()
    })
}

/// A dead letter re-queued at `now` with a fresh attempt count; `None` unless it is dead.
pub fn requeue(record: &EffectRecord, now: Timestamp) -> Option<EffectRecord> {
    matches!(record.state, EffectState::Dead).then(|| EffectRecord {
        state: EffectState::Pending { visible_at: now },
        attempts: 0,
        ..record.clone()
    })
}
