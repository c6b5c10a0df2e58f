//! Rows of the outbox table read back as records.

use tokio_postgres::Row;
use tollgate::outbox::{Claimed, DeadLetter, Effect, EffectId, EffectRecord, EffectState};
use tollgate::store::{Fence, Key, Owner, StoreError, Timestamp, Token};

use crate::error::{corrupt, db};
use crate::store::{owner_of, timestamp};

/// The state codes of the `state` column.
pub(super) const PENDING: i16 = 0;
pub(super) const IN_FLIGHT: i16 = 1;
pub(super) const DONE: i16 = 2;
pub(super) const DEAD: i16 = 3;

/// A row of [`super::sql::RECORD`] columns as a record.
pub(super) fn record(row: &Row) -> Result<EffectRecord, StoreError> {
    let state = match row.try_get::<_, i16>(5).map_err(db)? {
        PENDING => EffectState::Pending {
            visible_at: time(row, 6)?,
        },
        IN_FLIGHT => EffectState::InFlight {
            owner: owner_of(row.try_get(7).map_err(db)?)?,
            lease_until: time(row, 8)?,
        },
        DONE => EffectState::Done {
            receipt: row.try_get(9).map_err(db)?,
        },
        DEAD => EffectState::Dead,
        other => return Err(corrupt(format!("unknown outbox state {other}"))),
    };
    Ok(EffectRecord {
        id: id(row, 0)?,
        effect: effect(row, 1)?,
        state,
        attempts: attempts(row, 10)?,
        fence: Fence(unsigned(row, 11)?),
        last_error: row.try_get(12).map_err(db)?,
        enqueued_at: time(row, 13)?,
    })
}

/// A row returned by the claim (`id, fence, attempts, kind, namespace, key, payload`) as the
/// claim of `owner`.
pub(super) fn claimed(row: &Row, owner: Owner) -> Result<Claimed, StoreError> {
    Ok(Claimed {
        id: id(row, 0)?,
        token: Token {
            owner,
            fence: Fence(unsigned(row, 1)?),
        },
        attempt: attempts(row, 2)?,
        effect: effect(row, 3)?,
    })
}

/// A dead record as a dead letter.
pub(super) fn dead_letter(record: EffectRecord) -> DeadLetter {
    DeadLetter {
        id: record.id,
        effect: record.effect,
        attempts: record.attempts,
        last_error: record.last_error,
    }
}

/// The effect in the `kind, namespace, key, payload` columns from `at` on.
fn effect(row: &Row, at: usize) -> Result<Effect, StoreError> {
    Ok(Effect {
        kind: row.try_get(at).map_err(db)?,
        key: Key::new(
            row.try_get::<_, String>(at + 1).map_err(db)?,
            row.try_get::<_, String>(at + 2).map_err(db)?,
        ),
        payload: row.try_get(at + 3).map_err(db)?,
    })
}

fn id(row: &Row, at: usize) -> Result<EffectId, StoreError> {
    Ok(EffectId(unsigned(row, at)?))
}

fn unsigned(row: &Row, at: usize) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(at).map_err(db)?;
    u64::try_from(value).map_err(|_| corrupt(format!("a negative id or fence {value}")))
}

fn attempts(row: &Row, at: usize) -> Result<u32, StoreError> {
    let value: i32 = row.try_get(at).map_err(db)?;
    u32::try_from(value).map_err(|_| corrupt(format!("a negative attempt count {value}")))
}

fn time(row: &Row, at: usize) -> Result<Timestamp, StoreError> {
    let value: Option<i64> = row.try_get(at).map_err(db)?;
    value
        .map(timestamp)
        .ok_or_else(|| corrupt(format!("outbox column {at} is null in its state")))
}

/// The parameter of an id.
pub(super) fn id_param(id: EffectId) -> i64 {
    i64::try_from(id.0).unwrap_or(i64::MAX)
}
