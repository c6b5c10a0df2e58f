//! The statements of the store, one per operation, written for one schema.
//!
//! # Why the claim is a PL/pgSQL function
//! The claim must apply the whole transition table of
//! [`tollgate::once::transition::claim`] **and answer in every case**, also when it writes
//! nothing. Its write is one `INSERT … ON CONFLICT … DO UPDATE … WHERE <takeable> RETURNING`
//! (absent, past retention, freed by a retryable failure, or lapsed and taken over). When the
//! `WHERE` refuses, the answer must come from the row as it is now. A single SQL statement
//! cannot read that row reliably: a fallback `SELECT` in the same statement (a CTE beside the
//! `INSERT`) reads the statement's snapshot, which predates a concurrent claimant's insert —
//! a racer losing to a claim committed a moment ago would find *no row at all* and would need
//! a retry loop. In a `VOLATILE` PL/pgSQL function under `READ COMMITTED`, each statement takes
//! a fresh snapshot, and `ON CONFLICT` has already locked the existing row (it locks it even
//! when the `WHERE` refuses the update), so the follow-up read sees exactly the version that
//! was refused and nobody can change it before the function answers; the one extra write, a
//! lapsed attempt marked unknown, happens under the same lock. The client sends one
//! `SELECT * FROM <schema>.once_claim(…)` (a prepared statement: one round trip) and the whole
//! call is one transaction. The conformance races (1,000 claimants over 1 and 4 handles)
//! prove exactly one acquisition.
//!
//! Before the `INSERT`, the function reads the row without a lock: when nobody may take it
//! (not past retention, not freed) and the answer writes nothing — a live lease, a finished
//! attempt, a mismatch — it answers from that read. Racers losing to a live holder then
//! neither queue on the row lock nor commit a row lock (each lock takes a transaction id, and
//! its commit a WAL flush). This is not a check-then-insert: the read never decides an
//! acquisition, every write still goes through the one `INSERT … ON CONFLICT`, and a read
//! that finds nothing or a takeable row falls through to it.
//!
//! Renew, complete, fail and resolve are one conditional `UPDATE` each, fenced by owner and
//! fence (`WHERE owner = $ AND fence = $ AND state IN (in progress, unknown)`); complete, fail
//! and resolve announce the key with `pg_notify` in the same statement, delivered when it
//! commits. Purge deletes in batches of [`PURGE_BATCH`] rows per statement.

use crate::notify::PAYLOAD_CHARS;
use crate::schema::SchemaName;

/// Rows a purge statement deletes at most; purge repeats it until a batch comes back short.
pub(crate) const PURGE_BATCH: i64 = 1_000;

/// The columns [`crate::store`] decodes into a record, in order.
const RECORD: &str =
    "fingerprint, fence, state, owner, lease_until, payload, retryable, expires_at";

/// The fence of a holder: it still names the owner and fence, in progress or unknown.
const HELD: &str = "namespace = $1 AND key = $2 AND owner = $3 AND fence = $4 AND state IN (0, 3)";

/// Every statement of the store, for one schema.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) claim: String,
    pub(crate) renew: String,
    pub(crate) complete: String,
    pub(crate) fail: String,
    pub(crate) resolve: String,
    pub(crate) read: String,
    pub(crate) lock_held: String,
    pub(crate) purge: String,
}

impl Statements {
    /// The statements on the tables of `schema`.
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.as_str();
        let channel = schema.channel();
        // $1–$4 the holder, $5 the pinned time (NULL: the server's clock), $6 the payload,
        // $7 the encoded key, $8 the retention, $9 retryable.
        let notify = format!("RETURNING pg_notify('{channel}', left($7, {PAYLOAD_CHARS}))");
        Statements {
            claim: format!("SELECT * FROM {s}.once_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
            renew: format!(
                "UPDATE {s}.once SET state = 0, lease_until = {s}.now_ms($5) + $6 WHERE {HELD} \
                 RETURNING 1"
            ),
            complete: format!(
                "UPDATE {s}.once SET state = 1, payload = $6, owner = NULL, lease_until = NULL, \
                 retryable = NULL, expires_at = {s}.now_ms($5) + $8 WHERE {HELD} {notify}"
            ),
            fail: format!(
                "UPDATE {s}.once SET state = 2, payload = $6, owner = NULL, lease_until = NULL, \
                 retryable = $9, expires_at = {s}.now_ms($5) + $8 WHERE {HELD} {notify}"
            ),
            resolve: format!(
                "UPDATE {s}.once SET state = CASE WHEN $9::boolean IS NULL THEN 1 ELSE 2 END, \
                 payload = $6, owner = NULL, lease_until = NULL, retryable = $9, \
                 expires_at = {s}.now_ms($5) + $8 \
                 WHERE {HELD} AND (state = 3 OR lease_until <= {s}.now_ms($5)) {notify}"
            ),
            read: format!("SELECT {RECORD} FROM {s}.once WHERE namespace = $1 AND key = $2"),
            lock_held: format!("SELECT fence FROM {s}.once WHERE {HELD} FOR UPDATE"),
            purge: format!(
                "DELETE FROM {s}.once WHERE ctid = ANY (ARRAY(SELECT ctid FROM {s}.once \
                 WHERE expires_at <= {s}.now_ms($1) LIMIT {PURGE_BATCH} FOR UPDATE SKIP LOCKED))"
            ),
        }
    }
}
