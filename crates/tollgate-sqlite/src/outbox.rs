//! [`SqliteOutbox`]: a durable outbox in the same SQLite database as the application.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use tollgate::outbox::{
    Claimed, Completion, DeadLetter, Effect, EffectId, EffectRecord, EffectState, Outbox,
    OutboxStats, transition,
};
use tollgate::store::{Fence, Key, Owner, Settle, StoreError, Timestamp, Token};

use crate::schema::ms;
use crate::store::SqliteStore;

/// The columns of both tables: `open` holds the effects still to apply (pending or in
/// flight), `closed` the finished ones (done or dead). An enqueue appends one row to `open`
/// and touches nothing else: no secondary index, no `AUTOINCREMENT` counter (each would add a
/// page to the caller's commit — measured, +13 % of a one-`INSERT` transaction per page). The
/// workers' claim reads `open` alone, which stays as small as the backlog.
macro_rules! effect_table {
    ($name:literal) => {
        concat!(
            "CREATE TABLE IF NOT EXISTS ",
            $name,
            " (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    namespace   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    state       INTEGER NOT NULL,
    visible_at  INTEGER,
    owner       BLOB,
    lease_until INTEGER,
    receipt     BLOB,
    attempts    INTEGER NOT NULL,
    fence       INTEGER NOT NULL,
    last_error  TEXT,
    enqueued_at INTEGER NOT NULL
);"
        )
    };
}

const TABLES: &str = concat!(
    effect_table!("tollgate_outbox_open"),
    effect_table!("tollgate_outbox_closed")
);

/// Effects still to apply: pending or in flight.
const OPEN: &str = "tollgate_outbox_open";
/// Finished effects: done or dead.
const CLOSED: &str = "tollgate_outbox_closed";
/// The one table of earlier versions (every effect, an `AUTOINCREMENT` id and a partial index),
/// moved into [`OPEN`] and [`CLOSED`] when an outbox is opened.
const LEGACY: &str = "tollgate_outbox";

const PENDING: i64 = 0;
const IN_FLIGHT: i64 = 1;
const DONE: i64 = 2;
const DEAD: i64 = 3;

const COLUMNS: &str = "id, kind, namespace, key, payload, state, visible_at, owner, lease_until, \
     receipt, attempts, fence, last_error, enqueued_at";

/// An [`Outbox`] in an SQLite database, on the connection thread of a [`SqliteStore`]: effects
/// are as durable as the database (WAL, `synchronous = FULL`), and can be enqueued **inside
/// the application's own transaction** with [`SqliteOutbox::enqueue_in`], so an effect exists
/// exactly when the writes it belongs to were committed. Every operation is one
/// `BEGIN IMMEDIATE` transaction applying [`transition`]; times are the store's. Clones share
/// the connection.
#[derive(Clone, Debug)]
pub struct SqliteOutbox {
    store: SqliteStore,
}

impl SqliteOutbox {
    /// The outbox in `store`'s database, creating its tables if needed. Effects in the single
    /// `tollgate_outbox` table of earlier versions are moved into the current tables (ids, states,
    /// attempts and receipts kept), in one transaction.
    pub async fn new(store: SqliteStore) -> Result<Self, StoreError> {
        store
            .immediate(|tx, _| {
                tx.execute_batch(TABLES)?;
                migrate_legacy(&tx)?;
                tx.commit()
            })
            .await?;
        Ok(SqliteOutbox { store })
    }

    /// The store whose connection and time the outbox uses.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Enqueues `effect` inside the caller's transaction `tx` (one `INSERT`): it becomes
    /// visible to workers when `tx` commits, and disappears with it if `tx` rolls back.
    ///
    /// # Errors
    /// The insert's error; the caller's transaction decides what happens.
    pub fn enqueue_in(&self, tx: &Transaction<'_>, effect: &Effect) -> rusqlite::Result<EffectId> {
        insert(tx, effect, self.store.now())
    }

    async fn settle<F>(&self, id: EffectId, apply: F) -> Result<Settle, StoreError>
    where
        F: FnOnce(&EffectRecord, Timestamp) -> Option<EffectRecord> + Send + 'static,
    {
        self.store
            .immediate(move |tx, now| {
                let Some(record) = read(&tx, id)? else {
                    return Ok(Settle::Fenced);
                };
                let Some(next) = apply(&record, now) else {
                    return Ok(Settle::Fenced);
                };
                write(&tx, &record, &next)?;
                tx.commit()?;
                Ok(Settle::Accepted)
            })
            .await
    }
}

fn insert(conn: &Connection, effect: &Effect, now: Timestamp) -> rusqlite::Result<EffectId> {
    tollgate::outbox::note_enqueued(effect);
    // Cached on the connection: parsed and compiled once, not on every enqueue.
    // Ids are never reused: the next one follows the largest in either table (a row only
    // moves between them). Both maxima are reads of a table's last leaf.
    let mut insert = conn.prepare_cached(
        "INSERT INTO tollgate_outbox_open (id, kind, namespace, key, payload, state, visible_at, \
         attempts, fence, enqueued_at) VALUES (1 + max( \
         coalesce((SELECT max(id) FROM tollgate_outbox_open), 0), \
         coalesce((SELECT max(id) FROM tollgate_outbox_closed), 0)), \
         ?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?6)",
    )?;
    insert.execute(params![
        effect.kind,
        effect.key.namespace(),
        effect.key.key(),
        effect.payload,
        PENDING,
        ms(now)
    ])?;
    Ok(EffectId(
        u64::try_from(conn.last_insert_rowid()).unwrap_or(0),
    ))
}

fn read(conn: &Connection, id: EffectId) -> rusqlite::Result<Option<EffectRecord>> {
    for table in [OPEN, CLOSED] {
        let sql = format!("SELECT {COLUMNS} FROM {table} WHERE id = ?1");
        let mut select = conn.prepare_cached(&sql)?;
        if let Some(found) = select.query_row(params![id_param(id)], record).optional()? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The table a record in `state` lives in.
fn table_of(state: &EffectState) -> &'static str {
    match state {
        EffectState::Pending { .. } | EffectState::InFlight { .. } => OPEN,
        _ => CLOSED,
    }
}

/// Stores `next`, the successor of `prev` (as read): updated in place, or moved to the other
/// table when it opens or closes (same id).
fn write(conn: &Connection, prev: &EffectRecord, next: &EffectRecord) -> rusqlite::Result<()> {
    let (from, to) = (table_of(&prev.state), table_of(&next.state));
    let (state, visible_at, owner, lease_until, receipt) = match &next.state {
        EffectState::Pending { visible_at } => (PENDING, Some(ms(*visible_at)), None, None, None),
        EffectState::InFlight { owner, lease_until } => (
            IN_FLIGHT,
            None,
            Some(owner.0.to_be_bytes().to_vec()),
            Some(ms(*lease_until)),
            None,
        ),
        EffectState::Done { receipt } => (DONE, None, None, None, Some(receipt.as_slice())),
        EffectState::Dead => (DEAD, None, None, None, None),
        _ => return Err(rusqlite::Error::InvalidQuery),
    };
    let (id, fence) = (
        id_param(next.id),
        i64::try_from(next.fence.0).unwrap_or(i64::MAX),
    );
    if from != to {
        // The row moves with its id; the update below then writes its new state.
        conn.prepare_cached(&format!(
            "INSERT INTO {to} ({COLUMNS}) SELECT {COLUMNS} FROM {from} WHERE id = ?1"
        ))?
        .execute(params![id])?;
        conn.prepare_cached(&format!("DELETE FROM {from} WHERE id = ?1"))?
            .execute(params![id])?;
    }
    let mut update = conn.prepare_cached(&format!(
        "UPDATE {to} SET state = ?2, visible_at = ?3, owner = ?4, lease_until = ?5, \
         receipt = ?6, attempts = ?7, fence = ?8, last_error = ?9 WHERE id = ?1"
    ))?;
    update.execute(params![
        id,
        state,
        visible_at,
        owner,
        lease_until,
        receipt,
        next.attempts,
        fence,
        next.last_error
    ])?;
    Ok(())
}

fn record(row: &Row<'_>) -> rusqlite::Result<EffectRecord> {
    let state = match row.get::<_, i64>(5)? {
        PENDING => EffectState::Pending {
            visible_at: Timestamp(row.get(6)?),
        },
        IN_FLIGHT => {
            let bytes: Vec<u8> = row.get(7)?;
            let bytes: [u8; 16] = bytes.try_into().map_err(|_| invalid(7))?;
            EffectState::InFlight {
                owner: Owner(u128::from_be_bytes(bytes)),
                lease_until: Timestamp(row.get(8)?),
            }
        }
        DONE => EffectState::Done {
            receipt: row.get(9)?,
        },
        DEAD => EffectState::Dead,
        _ => return Err(invalid(5)),
    };
    Ok(EffectRecord {
        id: EffectId(row.get(0)?),
        effect: Effect {
            kind: row.get(1)?,
            key: Key::new(row.get::<_, String>(2)?, row.get::<_, String>(3)?),
            payload: row.get(4)?,
        },
        state,
        attempts: row.get(10)?,
        fence: Fence(row.get(11)?),
        last_error: row.get(12)?,
        enqueued_at: Timestamp(row.get(13)?),
    })
}

/// Moves the effects of an earlier version's single table into [`OPEN`] and [`CLOSED`], then
/// drops it; nothing to do when it does not exist.
fn migrate_legacy(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let exists: bool = tx.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [LEGACY],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(());
    }
    let moved = tx.execute(
        &format!(
            "INSERT INTO {OPEN} ({COLUMNS}) SELECT {COLUMNS} FROM {LEGACY} \
             WHERE state IN ({PENDING}, {IN_FLIGHT})"
        ),
        [],
    )? + tx.execute(
        &format!(
            "INSERT INTO {CLOSED} ({COLUMNS}) SELECT {COLUMNS} FROM {LEGACY} \
             WHERE state NOT IN ({PENDING}, {IN_FLIGHT})"
        ),
        [],
    )?;
    tx.execute_batch(&format!("DROP TABLE {LEGACY}"))?;
    tracing::info!(
        effects = moved,
        "outbox: moved the effects of {LEGACY} into {OPEN} and {CLOSED}"
    );
    Ok(())
}

fn invalid(column: usize) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(
        column,
        "tollgate_outbox_open".into(),
        rusqlite::types::Type::Null,
    )
}

fn id_param(id: EffectId) -> i64 {
    i64::try_from(id.0).unwrap_or(i64::MAX)
}

impl Outbox for SqliteOutbox {
    async fn enqueue(&self, effect: Effect) -> Result<EffectId, StoreError> {
        self.store
            .immediate(move |tx, now| {
                let id = insert(&tx, &effect, now)?;
                tx.commit()?;
                Ok(id)
            })
            .await
    }

    async fn claim(
        &self,
        worker: Owner,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store
            .immediate(move |tx, now| {
                let sql = format!(
                    "SELECT {COLUMNS} FROM {OPEN} WHERE (state = ?1 AND visible_at <= ?3) \
                     OR (state = ?2 AND lease_until <= ?3) ORDER BY id LIMIT ?4"
                );
                let records: Vec<EffectRecord> = {
                    let mut select = tx.prepare(&sql)?;
                    let rows =
                        select.query_map(params![PENDING, IN_FLIGHT, ms(now), limit], record)?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                let mut claimed = Vec::with_capacity(records.len());
                for record in records {
                    let next = transition::claim(&record, worker, lease, now);
                    write(&tx, &record, &next)?;
                    claimed.push(Claimed {
                        id: next.id,
                        token: Token {
                            owner: worker,
                            fence: next.fence,
                        },
                        effect: next.effect,
                        attempt: next.attempts,
                    });
                }
                tx.commit()?;
                Ok(claimed)
            })
            .await
    }

    async fn heartbeat(
        &self,
        id: EffectId,
        token: Token,
        lease: Duration,
    ) -> Result<Settle, StoreError> {
        self.settle(id, move |r, now| {
            transition::heartbeat(r, token, lease, now)
        })
        .await
    }

    async fn complete(
        &self,
        id: EffectId,
        token: Token,
        receipt: Vec<u8>,
    ) -> Result<Settle, StoreError> {
        self.settle(id, move |r, _| transition::complete(r, token, receipt))
            .await
    }

    async fn complete_all(&self, completions: Vec<Completion>) -> Result<Vec<Settle>, StoreError> {
        // One `BEGIN IMMEDIATE` transaction (one commit) for the batch, each completion
        // fenced by its own token.
        self.store
            .immediate(move |tx, _| {
                let mut settled = Vec::with_capacity(completions.len());
                for c in completions {
                    let prev = read(&tx, c.id)?;
                    let next = prev
                        .as_ref()
                        .and_then(|r| transition::complete(r, c.token, c.receipt));
                    settled.push(match (prev, next) {
                        (Some(prev), Some(next)) => {
                            write(&tx, &prev, &next)?;
                            Settle::Accepted
                        }
                        _ => Settle::Fenced,
                    });
                }
                tx.commit()?;
                Ok(settled)
            })
            .await
    }

    async fn retry(
        &self,
        id: EffectId,
        token: Token,
        error: String,
        after: Duration,
    ) -> Result<Settle, StoreError> {
        self.settle(id, move |r, now| {
            transition::retry(r, token, error, after, now)
        })
        .await
    }

    async fn dead_letter(
        &self,
        id: EffectId,
        token: Token,
        error: String,
    ) -> Result<Settle, StoreError> {
        self.settle(id, move |r, _| transition::dead_letter(r, token, error))
            .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store
            .call(move |conn| {
                let sql =
                    format!("SELECT {COLUMNS} FROM {CLOSED} WHERE state = ?1 ORDER BY id LIMIT ?2");
                let mut select = conn.prepare(&sql)?;
                let rows = select.query_map(params![DEAD, limit], record)?;
                rows.map(|r| {
                    r.map(|r| DeadLetter {
                        id: r.id,
                        effect: r.effect,
                        attempts: r.attempts,
                        last_error: r.last_error,
                    })
                })
                .collect()
            })
            .await
    }

    async fn requeue(&self, id: EffectId) -> Result<bool, StoreError> {
        let settled = self.settle(id, transition::requeue).await?;
        Ok(settled == Settle::Accepted)
    }

    async fn read(&self, id: EffectId) -> Result<Option<EffectRecord>, StoreError> {
        self.store.call(move |conn| read(conn, id)).await
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        self.store
            .call(|conn| {
                let mut stats = OutboxStats::default();
                let mut select = conn.prepare(
                    "SELECT state, count(*), min(enqueued_at) FROM tollgate_outbox_open \
                     GROUP BY state UNION ALL SELECT state, count(*), NULL \
                     FROM tollgate_outbox_closed GROUP BY state",
                )?;
                let mut rows = select.query([])?;
                while let Some(row) = rows.next()? {
                    let (state, count, oldest): (i64, u64, Option<u64>) =
                        (row.get(0)?, row.get(1)?, row.get(2)?);
                    match state {
                        PENDING => stats.pending = count,
                        IN_FLIGHT => stats.in_flight = count,
                        DONE => stats.done = count,
                        _ => stats.dead = count,
                    }
                    if let (PENDING | IN_FLIGHT, Some(oldest)) = (state, oldest) {
                        stats.note_unapplied(Timestamp(oldest));
                    }
                }
                Ok(stats)
            })
            .await
    }
}
