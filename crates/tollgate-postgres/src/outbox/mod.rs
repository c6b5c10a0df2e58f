//! [`PgOutbox`]: a durable outbox in the store's PostgreSQL schema, shared by every instance.

mod row;
mod sql;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Transaction;
use tokio_postgres::types::{ToSql, Type};
use tollgate::outbox::{
    Claimed, Completion, DeadLetter, Effect, EffectId, EffectRecord, Outbox, OutboxStats,
};
use tollgate::store::{Owner, Settle, StoreError, Token};

use crate::error::db;
use crate::store::{Params, PostgresStore, fence, owner_bytes};
use crate::time::ms;
use row::{DEAD, IN_FLIGHT, PENDING, id_param};
use sql::Statements;

/// An [`Outbox`] in the schema of a [`PostgresStore`] (table `<schema>.outbox`, created by
/// the store's migration 4), on the store's pool and time. Clones share both.
///
/// # Guarantees
/// - **One statement per operation**, applying the rules of
///   [`tollgate::outbox::transition`] with the store's time (the server's clock, or the
///   store's [`PinnedTime`](crate::PinnedTime) in tests).
/// - **A claim never takes an effect another worker holds**: it is one
///   `UPDATE … WHERE id IN (SELECT … ORDER BY id LIMIT $n FOR UPDATE SKIP LOCKED) RETURNING …`
///   — concurrent claims skip each other's rows instead of waiting for them (tests
///   `s4_outbox::s4_a_claim_skips_rows_locked_by_another_transaction` and
///   `s4_outbox::s4_outbox_conformance::outbox_eight_workers_on_their_own_handles_apply_200_effects_once_each`).
/// - **A stalled worker's late write is rejected**: heartbeat, complete, retry and dead
///   letter are one `UPDATE` each, fenced by id, owner and fence of the in-flight row (test
///   `s4_outbox::s4_outbox_conformance::outbox_a_worker_stalled_past_its_lease_is_fenced_and_the_save_applied_once`).
///   A worker's batch of completions ([`Outbox::complete_all`]) is **one** `UPDATE … FROM
///   unnest(ids, owners, fences, receipts)` with the same fence per row: one commit for the
///   batch, each completion accepted or fenced on its own (test
///   `s4_outbox::s4_outbox_conformance::outbox_complete_all_fences_each_completion_by_its_own_token`).
/// - **Enqueued with the caller's writes**: [`PgOutbox::enqueue_in`] (and
///   [`PgOutbox::enqueue_in_pooled`]) inserts inside the caller's transaction, so the effect
///   exists exactly when those writes committed (tests
///   `s4_outbox::s4_an_effect_enqueued_in_a_transaction_exists_only_if_it_commits`,
///   `s4_outbox::s4_an_effect_enqueued_in_a_pooled_transaction_exists_only_if_it_commits`).
///   Its `INSERT` does not depend on the caller's statements, so it can be sent together
///   with them (`tokio::try_join!`), saving its round trip.
///
/// Cancellation: dropping an operation's future after its statement was sent does not undo
/// it; the statement commits (or not) atomically either way.
#[derive(Clone)]
pub struct PgOutbox {
    store: PostgresStore,
    sql: Arc<Statements>,
}

impl PgOutbox {
    /// The outbox in `store`'s schema. Its table exists: opening the store applied (or
    /// checked) every migration.
    pub fn new(store: &PostgresStore) -> Self {
        PgOutbox {
            sql: Arc::new(Statements::new(&store.inner().schema)),
            store: store.clone(),
        }
    }

    /// The store whose pool, schema and time the outbox uses.
    pub fn store(&self) -> &PostgresStore {
        &self.store
    }

    /// Enqueues `effect` inside the caller's transaction `tx` with **one statement**, one
    /// round trip: it becomes visible to workers when `tx` commits, and disappears with it
    /// if `tx` rolls back. `tx` must be on the store's database.
    ///
    /// A plain `tokio_postgres` transaction has no statement cache, so the `INSERT` is sent
    /// unprepared (parse, plan, bind and execute in one round trip, every time). Inside a
    /// `deadpool_postgres` transaction (the store's pool), [`PgOutbox::enqueue_in_pooled`]
    /// saves the parsing and planning with the connection's statement cache.
    ///
    /// # Errors
    /// The insert's error, typed like every store error (the store's timeout bounds it); the
    /// caller's transaction decides what happens next.
    pub async fn enqueue_in(
        &self,
        tx: &Transaction<'_>,
        effect: &Effect,
    ) -> Result<EffectId, StoreError> {
        let pinned = self.store.pinned();
        let params: [(&(dyn ToSql + Sync), Type); 5] = [
            (&effect.kind, Type::TEXT),
            (&effect.key.namespace(), Type::TEXT),
            (&effect.key.key(), Type::TEXT),
            (&effect.payload, Type::BYTEA),
            (&pinned, Type::INT8),
        ];
        let row = self
            .store
            .bounded("an enqueue in a transaction", async {
                let rows = tx.query_typed(&self.sql.enqueue, &params).await;
                rows.map_err(db)
            })
            .await?;
        let id = inserted(&row)?;
        tollgate::outbox::note_enqueued(effect);
        Ok(id)
    }

    /// [`PgOutbox::enqueue_in`] inside a transaction of a `deadpool_postgres` connection
    /// (such as one of the store's pool): the same **one statement**, prepared once per
    /// connection and then taken from the connection's statement cache, so each enqueue is
    /// one round trip (bind and execute) with no parsing or planning. The `INSERT` depends on
    /// none of the caller's statements, so it can share their round trip: polled together
    /// with the caller's own statement (`tokio::try_join!(tx.execute(…), outbox
    /// .enqueue_in_pooled(&tx, &effect))`), both are sent before either answer is awaited
    /// (the driver pipelines them) and run in the order they were sent.
    ///
    /// # Errors
    /// The insert's error (or the first preparation's), typed like every store error (the
    /// store's timeout bounds it); the caller's transaction decides what happens next.
    pub async fn enqueue_in_pooled(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        effect: &Effect,
    ) -> Result<EffectId, StoreError> {
        let pinned = self.store.pinned();
        let (namespace, key) = (effect.key.namespace(), effect.key.key());
        let params: &Params<'_> = &[&effect.kind, &namespace, &key, &effect.payload, &pinned];
        let rows = self
            .store
            .bounded("an enqueue in a transaction", async {
                let statement = tx
                    .prepare_typed_cached(&self.sql.enqueue, &ENQUEUE_TYPES)
                    .await
                    .map_err(db)?;
                tx.query(&statement, params).await.map_err(db)
            })
            .await?;
        let id = inserted(&rows)?;
        tollgate::outbox::note_enqueued(effect);
        Ok(id)
    }

    /// Rows of one prepared statement on a pooled connection.
    async fn query(
        &self,
        what: &'static str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.store.query(what, sql, params).await
    }

    /// A fenced write by the holder `token` of `id`: `$1`–`$3`, then `rest`.
    async fn settle(
        &self,
        what: &'static str,
        sql: &str,
        id: EffectId,
        token: Token,
        rest: &Params<'_>,
    ) -> Result<Settle, StoreError> {
        let (id, fence) = (id_param(id), fence(token.fence));
        let owner = owner_bytes(token.owner).to_vec();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id, &owner, &fence];
        params.extend_from_slice(rest);
        let rows = self.query(what, sql, &params).await?;
        Ok(match rows.is_empty() {
            true => Settle::Fenced,
            false => Settle::Accepted,
        })
    }
}

/// The parameter types of the enqueue: kind, namespace, key, payload, the pinned time.
const ENQUEUE_TYPES: [Type; 5] = [Type::TEXT, Type::TEXT, Type::TEXT, Type::BYTEA, Type::INT8];

/// The id an `INSERT … RETURNING id` answered.
fn inserted(rows: &[tokio_postgres::Row]) -> Result<EffectId, StoreError> {
    let row = rows
        .first()
        .ok_or_else(|| crate::error::corrupt("the enqueue answered no row"))?;
    let id: i64 = row.try_get(0).map_err(db)?;
    Ok(EffectId(u64::try_from(id).unwrap_or(0)))
}

impl Outbox for PgOutbox {
    async fn enqueue(&self, effect: Effect) -> Result<EffectId, StoreError> {
        let (namespace, key) = (effect.key.namespace(), effect.key.key());
        let pinned = self.store.pinned();
        let params: &Params<'_> = &[&effect.kind, &namespace, &key, &effect.payload, &pinned];
        let rows = self.query("an enqueue", &self.sql.enqueue, params).await?;
        let id = inserted(&rows)?;
        tollgate::outbox::note_enqueued(&effect);
        Ok(id)
    }

    async fn claim(
        &self,
        worker: Owner,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let (owner, pinned) = (owner_bytes(worker).to_vec(), self.store.pinned());
        let (lease, limit) = (ms(lease), i64::try_from(limit).unwrap_or(i64::MAX));
        let params: &Params<'_> = &[&owner, &pinned, &lease, &limit];
        let rows = self.query("a claim", &self.sql.claim, params).await?;
        let mut claimed = rows
            .iter()
            .map(|r| row::claimed(r, worker))
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_unstable_by_key(|c| c.id); // RETURNING keeps no order
        Ok(claimed)
    }

    async fn heartbeat(
        &self,
        id: EffectId,
        token: Token,
        lease: Duration,
    ) -> Result<Settle, StoreError> {
        let (pinned, lease) = (self.store.pinned(), ms(lease));
        let sql = &self.sql.heartbeat;
        self.settle("a heartbeat", sql, id, token, &[&pinned, &lease])
            .await
    }

    async fn complete(
        &self,
        id: EffectId,
        token: Token,
        receipt: Vec<u8>,
    ) -> Result<Settle, StoreError> {
        let sql = &self.sql.complete;
        self.settle("a completion", sql, id, token, &[&receipt])
            .await
    }

    async fn complete_all(&self, completions: Vec<Completion>) -> Result<Vec<Settle>, StoreError> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(completions.len());
        let mut owners = Vec::with_capacity(completions.len());
        let mut fences = Vec::with_capacity(completions.len());
        let mut receipts = Vec::with_capacity(completions.len());
        for c in &completions {
            ids.push(id_param(c.id));
            owners.push(owner_bytes(c.token.owner).to_vec());
            fences.push(fence(c.token.fence));
            receipts.push(c.receipt.as_slice());
        }
        let params: &Params<'_> = &[&ids, &owners, &fences, &receipts];
        let sql = &self.sql.complete_all;
        let rows = self.query("a batch of completions", sql, params).await?;
        let mut accepted = HashMap::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get(0).map_err(db)?;
            let owner: Vec<u8> = r.try_get(1).map_err(db)?;
            let fence: i64 = r.try_get(2).map_err(db)?;
            *accepted.entry((id, owner, fence)).or_insert(0_usize) += 1;
        }
        // Each accepted row answers one completion, the first that names it; any other
        // completion was fenced (its claim was taken over, or it repeats an accepted one).
        let mut settled = Vec::with_capacity(ids.len());
        for ((id, owner), fence) in ids.into_iter().zip(owners).zip(fences) {
            let left = accepted.get_mut(&(id, owner, fence)).filter(|n| **n > 0);
            settled.push(match left {
                Some(n) => {
                    *n -= 1;
                    Settle::Accepted
                }
                None => Settle::Fenced,
            });
        }
        Ok(settled)
    }

    async fn retry(
        &self,
        id: EffectId,
        token: Token,
        error: String,
        after: Duration,
    ) -> Result<Settle, StoreError> {
        let (pinned, after) = (self.store.pinned(), ms(after));
        let sql = &self.sql.retry;
        self.settle("a retry", sql, id, token, &[&pinned, &after, &error])
            .await
    }

    async fn dead_letter(
        &self,
        id: EffectId,
        token: Token,
        error: String,
    ) -> Result<Settle, StoreError> {
        let sql = &self.sql.dead_letter;
        self.settle("a dead letter", sql, id, token, &[&error])
            .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query("the dead letters", &self.sql.dead_letters, &[&limit])
            .await?;
        rows.iter()
            .map(|r| row::record(r).map(row::dead_letter))
            .collect()
    }

    async fn requeue(&self, id: EffectId) -> Result<bool, StoreError> {
        let (id, pinned) = (id_param(id), self.store.pinned());
        let rows = self
            .query("a requeue", &self.sql.requeue, &[&id, &pinned])
            .await?;
        Ok(!rows.is_empty())
    }

    async fn read(&self, id: EffectId) -> Result<Option<EffectRecord>, StoreError> {
        let id = id_param(id);
        let rows = self.query("a read", &self.sql.read, &[&id]).await?;
        rows.first().map(row::record).transpose()
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let rows = self.query("the stats", &self.sql.stats, &[]).await?;
        let mut stats = OutboxStats::default();
        for r in &rows {
            let state: i16 = r.try_get(0).map_err(db)?;
            let count = u64::try_from(r.try_get::<_, i64>(1).map_err(db)?).unwrap_or(0);
            let oldest: Option<i64> = r.try_get(2).map_err(db)?;
            match state {
                PENDING => stats.pending = count,
                IN_FLIGHT => stats.in_flight = count,
                DEAD => stats.dead = count,
                _ => stats.done = count,
            }
            if let (PENDING | IN_FLIGHT, Some(oldest)) = (state, oldest) {
                stats.note_unapplied(crate::store::timestamp(oldest));
            }
        }
        Ok(stats)
    }
}

impl fmt::Debug for PgOutbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOutbox")
            .field("schema", &self.store.schema())
            .finish()
    }
}
