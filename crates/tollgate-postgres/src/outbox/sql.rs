//! The outbox's statements, one per operation, written for one schema.
//!
//! The claim is **one statement**: an `UPDATE` of the rows a sub-select picked with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claims never wait on, nor take, each other's rows;
//! the store's time is read once (`now_ms`, the server's clock unless a test pinned it) in a
//! materialized CTE. Every worker write is one conditional `UPDATE` fenced by id, owner and
//! fence of an in-flight row ([`HELD`]): a write whose claim was taken over changes nothing.

use crate::schema::SchemaName;

/// The columns [`super::row::record`] decodes, in order.
pub(super) const RECORD: &str = "id, kind, namespace, key, payload, state, visible_at, owner, \
     lease_until, receipt, attempts, fence, last_error, enqueued_at";

/// The columns [`super::row::claimed`] decodes, in order.
const CLAIMED: &str = "o.id, o.fence, o.attempts, o.kind, o.namespace, o.key, o.payload";

/// The fence of a worker write: `$1` the id, `$2` the owner, `$3` the fence of its claim.
const HELD: &str = "id = $1 AND state = 1 AND owner = $2 AND fence = $3";

/// Every statement of the outbox, for one schema.
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) enqueue: String,
    pub(super) claim: String,
    pub(super) heartbeat: String,
    pub(super) complete: String,
    pub(super) complete_all: String,
    pub(super) retry: String,
    pub(super) dead_letter: String,
    pub(super) requeue: String,
    pub(super) read: String,
    pub(super) dead_letters: String,
    pub(super) stats: String,
}

impl Statements {
    /// The statements on the outbox table of `schema`.
    pub(super) fn new(schema: &SchemaName) -> Self {
        let s = schema.as_str();
        let now = |p: &str| format!("{s}.now_ms({p})");
        Statements {
            // $1 kind, $2 namespace, $3 key, $4 payload, $5 the pinned time.
            enqueue: format!(
                "INSERT INTO {s}.outbox (kind, namespace, key, payload, state, visible_at, \
                 attempts, fence, enqueued_at) SELECT $1, $2, $3, $4, 0, n.t, 0, 0, n.t \
                 FROM (SELECT {} AS t) n RETURNING id",
                now("$5")
            ),
            // $1 owner, $2 the pinned time, $3 the lease, $4 the limit.
            claim: format!(
                "WITH n AS MATERIALIZED (SELECT {} AS t) \
                 UPDATE {s}.outbox o SET state = 1, owner = $1, lease_until = n.t + $3, \
                 visible_at = NULL, attempts = o.attempts + 1, fence = o.fence + 1 FROM n \
                 WHERE o.id IN (SELECT c.id FROM {s}.outbox c, n WHERE c.state IN (0, 1) \
                 AND ((c.state = 0 AND c.visible_at <= n.t) \
                 OR (c.state = 1 AND c.lease_until <= n.t)) \
                 ORDER BY c.id LIMIT $4 FOR UPDATE OF c SKIP LOCKED) RETURNING {CLAIMED}",
                now("$2")
            ),
            // $4 the pinned time, $5 the lease.
            heartbeat: format!(
                "UPDATE {s}.outbox SET lease_until = {} + $5 WHERE {HELD} RETURNING 1",
                now("$4")
            ),
            // $4 the receipt.
            complete: format!(
                "UPDATE {s}.outbox SET state = 2, receipt = $4, owner = NULL, lease_until = NULL \
                 WHERE {HELD} RETURNING 1"
            ),
            // $1 the ids, $2 the owners, $3 the fences, $4 the receipts: each row fenced like
            // HELD. The primary key finds each row (a nested loop over the unnest, no scan);
            // RETURNING names the (id, owner, fence) of every accepted completion.
            complete_all: format!(
                "UPDATE {s}.outbox o SET state = 2, receipt = d.receipt, owner = NULL, \
                 lease_until = NULL \
                 FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::bytea[]) \
                 AS d(id, owner, fence, receipt) \
                 WHERE o.id = d.id AND o.state = 1 AND o.owner = d.owner AND o.fence = d.fence \
                 RETURNING d.id, d.owner, d.fence"
            ),
            // $4 the pinned time, $5 the delay, $6 the error.
            retry: format!(
                "UPDATE {s}.outbox SET state = 0, visible_at = {} + $5, owner = NULL, \
                 lease_until = NULL, last_error = $6 WHERE {HELD} RETURNING 1",
                now("$4")
            ),
            // $4 the error.
            dead_letter: format!(
                "UPDATE {s}.outbox SET state = 3, owner = NULL, lease_until = NULL, \
                 last_error = $4 WHERE {HELD} RETURNING 1"
            ),
            // $1 the id, $2 the pinned time.
            requeue: format!(
                "UPDATE {s}.outbox SET state = 0, visible_at = {}, attempts = 0 \
                 WHERE id = $1 AND state = 3 RETURNING 1",
                now("$2")
            ),
            read: format!("SELECT {RECORD} FROM {s}.outbox WHERE id = $1"),
            dead_letters: format!(
                "SELECT {RECORD} FROM {s}.outbox WHERE state = 3 ORDER BY id LIMIT $1"
            ),
            stats: format!(
                "SELECT state, count(*), min(enqueued_at) FROM {s}.outbox GROUP BY state"
            ),
        }
    }
}
