//! [`PgOutbox`]: a durable outbox in the store's PostgreSQL schema, shared by every instance.

mod row;
mod sql;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Transaction;
use tokio_postgres::types::{ToSql, Type};
use tollgate::outbox::{Claimed, DeadLetter, Effect, EffectId, EffectRecord, Outbox, OutboxStats};
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
///   `s4_outbox::s4_eight_workers_on_their_own_connections_apply_200_effects_once_each`).
/// - **A stalled worker's late write is rejected**: heartbeat, complete, retry and dead
///   letter are one `UPDATE` each, fenced by id, owner and fence of the in-flight row (test
///   `s4_outbox::s4_a_worker_stalled_past_its_lease_is_fenced_and_the_save_applied_once`).
/// - **Enqueued with the caller's writes**: [`PgOutbox::enqueue_in`] inserts inside the
///   caller's transaction, so the effect exists exactly when those writes committed (test
///   `s4_outbox::s4_an_effect_enqueued_in_a_transaction_exists_only_if_it_commits`).
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
    /// if `tx` rolls back. `tx` must be on the store's database; a `deadpool_postgres`
    /// transaction is passed as `&tx` (it dereferences to this one).
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
