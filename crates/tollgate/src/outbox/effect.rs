//! An [`Effect`] and the record a store keeps of it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::once::{CodecError, decode, encode};
use crate::store::{Fence, Key, Owner, Timestamp, Token};

/// A side effect to apply later, durably: which handler applies it (`kind`), its idempotency
/// key (so the handler can apply it exactly once, e.g. with [`crate::once`]) and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// The handler that applies it.
    pub kind: String,
    /// Its idempotency key: the same key is the same effect.
    pub key: Key,
    /// What the handler needs, serialized (JSON).
    pub payload: Vec<u8>,
}

impl Effect {
    /// An effect of `kind` with idempotency key `key` and a serializable payload.
    pub fn new<T: Serialize + ?Sized>(
        kind: impl Into<String>,
        key: Key,
        payload: &T,
    ) -> Result<Self, CodecError> {
        Ok(Effect {
            kind: kind.into(),
            key,
            payload: encode(payload)?,
        })
    }

    /// The payload, deserialized.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        decode(&self.payload)
    }
}

/// Identifies an enqueued effect in its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EffectId(pub u64);

/// Where an effect stands: pending → in flight (a worker holds it under a lease) → done, or
/// back to pending for a retry, or dead-lettered after its last attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EffectState {
    /// Waiting for a worker; not claimable before `visible_at` (a retry's backoff).
    Pending {
        /// When it may be claimed.
        visible_at: Timestamp,
    },
    /// A worker applies it; claimable again by another worker once the lease runs out.
    InFlight {
        /// The worker.
        owner: Owner,
        /// When its lease runs out unless renewed (a heartbeat).
        lease_until: Timestamp,
    },
    /// Applied; the handler's receipt is stored.
    Done {
        /// What the handler returned.
        receipt: Vec<u8>,
    },
    /// Given up after its last attempt; kept with its last error until re-queued.
    Dead,
}

/// The stored record of one effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectRecord {
    /// Its id.
    pub id: EffectId,
    /// The effect.
    pub effect: Effect,
    /// Where it stands.
    pub state: EffectState,
    /// Attempts started so far.
    pub attempts: u32,
    /// The fence of the latest claim: a worker's write must present it.
    pub fence: Fence,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it was enqueued (store time).
    pub enqueued_at: Timestamp,
}

impl EffectRecord {
    /// The token of the worker holding it, if one does.
    pub fn holder(&self) -> Option<Token> {
        match self.state {
            EffectState::InFlight { owner, .. } => Some(Token {
                owner,
                fence: self.fence,
            }),
            _ => None,
        }
    }
}

/// An effect a worker claimed: apply it, then report with the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// Its id.
    pub id: EffectId,
    /// The worker's token for this attempt.
    pub token: Token,
    /// The effect.
    pub effect: Effect,
    /// This attempt's number, from 1.
    pub attempt: u32,
}

/// An applied effect to mark done: what [`crate::outbox::Outbox::complete_all`] writes for
/// each effect, fenced by the token of its claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Its id.
    pub id: EffectId,
    /// The token of the claim that applied it.
    pub token: Token,
    /// What the handler returned.
    pub receipt: Vec<u8>,
}

/// A dead-lettered effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id (re-queue it with this).
    pub id: EffectId,
    /// The effect.
    pub effect: Effect,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

/// Counts of an outbox, for metrics and health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Effects waiting for a worker (including retries in backoff).
    pub pending: u64,
    /// Effects a worker holds.
    pub in_flight: u64,
    /// Effects applied and kept.
    pub done: u64,
    /// Dead letters.
    pub dead: u64,
    /// When the oldest effect not yet applied (pending or in flight) was enqueued.
    pub oldest_unapplied: Option<Timestamp>,
}

impl OutboxStats {
    /// Counts in an effect not yet applied that was enqueued at `enqueued_at`: the earliest
    /// such time is [`OutboxStats::oldest_unapplied`].
    pub fn note_unapplied(&mut self, enqueued_at: Timestamp) {
        let oldest = self
            .oldest_unapplied
            .map_or(enqueued_at, |o| o.min(enqueued_at));
        self.oldest_unapplied = Some(oldest);
    }
}
