//! [`MemoryOutbox`]: effects in process memory, for tests and single-process use.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::effect::{
    Claimed, Completion, DeadLetter, Effect, EffectId, EffectRecord, EffectState, OutboxStats,
};
use super::store::Outbox;
use super::transition;
use crate::clock::Clock;
use crate::store::{Fence, Owner, Settle, StoreError, Timeline, Timestamp, Token};

#[derive(Default)]
struct Effects {
    next: u64,
    records: BTreeMap<EffectId, EffectRecord>,
}

/// An [`Outbox`] in process memory: nothing survives the process, so it is not durable — use
/// it in tests, or behind a durable store. Its time follows a [`Clock`] (tokio's by default).
/// Clones share the effects.
#[derive(Clone)]
pub struct MemoryOutbox {
    effects: Arc<Mutex<Effects>>,
    timeline: Timeline,
}

impl MemoryOutbox {
    /// An empty outbox on tokio's clock.
    pub fn new() -> Self {
        Self::with_clock(Clock::Tokio)
    }

    /// An empty outbox whose time follows `clock`.
    pub fn with_clock(clock: Clock) -> Self {
        MemoryOutbox {
            effects: Arc::default(),
            timeline: Timeline::from_clock(clock),
        }
    }

    fn effects(&self) -> MutexGuard<'_, Effects> {
        self.effects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settle(
        &self,
        id: EffectId,
        apply: impl FnOnce(&EffectRecord, Timestamp) -> Option<EffectRecord>,
    ) -> Settle {
        let now = self.timeline.now();
        let mut effects = self.effects();
        let Some(record) = effects.records.get(&id) else {
            return Settle::Fenced;
        };
        match apply(record, now) {
            Some(next) => {
                effects.records.insert(id, next);
                Settle::Accepted
            }
            None => Settle::Fenced,
        }
    }
}

impl Default for MemoryOutbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbox for MemoryOutbox {
    async fn enqueue(&self, effect: Effect) -> Result<EffectId, StoreError> {
        super::note_enqueued(&effect);
        let now = self.timeline.now();
        let mut effects = self.effects();
        effects.next += 1;
        let id = EffectId(effects.next);
        let record = EffectRecord {
            id,
            effect,
            state: EffectState::Pending { visible_at: now },
            attempts: 0,
            fence: Fence(0),
            last_error: None,
            enqueued_at: now,
        };
        effects.records.insert(id, record);
        Ok(id)
    }

    async fn claim(
        &self,
        worker: Owner,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = self.timeline.now();
        let mut effects = self.effects();
        let mut claimed = Vec::new();
        for record in effects.records.values_mut() {
            if claimed.len() >= limit {
                break;
            }
            if !transition::is_claimable(record, now) {
                continue;
            }
            *record = transition::claim(record, worker, lease, now);
            claimed.push(Claimed {
                id: record.id,
                token: Token {
                    owner: worker,
                    fence: record.fence,
                },
                effect: record.effect.clone(),
                attempt: record.attempts,
            });
        }
        Ok(claimed)
    }

    async fn heartbeat(
        &self,
        id: EffectId,
        token: Token,
        lease: Duration,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(id, |r, now| transition::heartbeat(r, token, lease, now)))
    }

    async fn complete(
        &self,
        id: EffectId,
        token: Token,
        receipt: Vec<u8>,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(id, |r, _| transition::complete(r, token, receipt)))
    }

    async fn complete_all(&self, completions: Vec<Completion>) -> Result<Vec<Settle>, StoreError> {
        // One atomic step for the whole batch, each completion fenced by its own token.
        let mut effects = self.effects();
        let settled = completions.into_iter().map(|c| {
            let next = effects
                .records
                .get(&c.id)
                .and_then(|r| transition::complete(r, c.token, c.receipt));
            match next {
                Some(next) => {
                    effects.records.insert(c.id, next);
                    Settle::Accepted
                }
                None => Settle::Fenced,
            }
        });
        Ok(settled.collect())
    }

    async fn retry(
        &self,
        id: EffectId,
        token: Token,
        error: String,
        after: Duration,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(id, |r, now| transition::retry(r, token, error, after, now)))
    }

    async fn dead_letter(
        &self,
        id: EffectId,
        token: Token,
        error: String,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(id, |r, _| transition::dead_letter(r, token, error)))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let effects = self.effects();
        let dead = effects
            .records
            .values()
            .filter(|r| r.state == EffectState::Dead)
            .take(limit)
            .map(|r| DeadLetter {
                id: r.id,
                effect: r.effect.clone(),
                attempts: r.attempts,
                last_error: r.last_error.clone(),
            });
        Ok(dead.collect())
    }

    async fn requeue(&self, id: EffectId) -> Result<bool, StoreError> {
        let settled = self.settle(id, transition::requeue);
        Ok(settled == Settle::Accepted)
    }

    async fn read(&self, id: EffectId) -> Result<Option<EffectRecord>, StoreError> {
        Ok(self.effects().records.get(&id).cloned())
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let mut stats = OutboxStats::default();
        for record in self.effects().records.values() {
            match record.state {
                EffectState::Pending { .. } => stats.pending += 1,
                EffectState::InFlight { .. } => stats.in_flight += 1,
                EffectState::Done { .. } => stats.done += 1,
                EffectState::Dead => stats.dead += 1,
            }
            let unapplied = matches!(
                record.state,
                EffectState::Pending { .. } | EffectState::InFlight { .. }
            );
            if unapplied {
                stats.note_unapplied(record.enqueued_at);
            }
        }
        Ok(stats)
    }
}

impl fmt::Debug for MemoryOutbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryOutbox")
            .field("effects", &self.effects().records.len())
            .finish()
    }
}
