//! The lock table (migration 5) and the statements of [`PgLockStore`](crate::PgLockStore), one
//! per operation.
//!
//! An acquisition is one `SELECT * FROM <schema>.lock_acquire(…)`, a PL/pgSQL function for the
//! same reason the claim is one (see the `sql` module): its write is a single
//! `INSERT … ON CONFLICT … DO UPDATE … WHERE <free> RETURNING`, and when the `WHERE` refuses,
//! the answer (who holds the key, until when) must come from the row as it is now, which a
//! second statement in a `VOLATILE` function under `READ COMMITTED` reads with a fresh snapshot
//! while `ON CONFLICT` keeps the row locked. A plain read first answers a live holder without
//! taking the row lock, so racers losing to a holder neither queue nor commit a lock; it never
//! decides an acquisition. Renew, release and hand-over are one conditional `UPDATE` each,
//! fenced by owner and fence. No session-level advisory lock anywhere: the lease is a row, judged by the
//! server's clock (`now_ms`, migration 1), so it survives transaction-pooling proxies and
//! crashed clients alike.

use crate::schema::SchemaName;

/// Migration 5: the lease table and the acquisition. A released lock keeps its row (owner and
/// lease `NULL`) and so its fence: fences never decrease.
pub(crate) const V5_LOCKS: &str = "
CREATE TABLE {s}.locks (
    namespace   text   NOT NULL,
    key         text   NOT NULL,
    fence       bigint NOT NULL,
    owner       bytea,
    lease_until bigint,
    PRIMARY KEY (namespace, key),
    CHECK ((owner IS NULL) = (lease_until IS NULL))
);
CREATE FUNCTION {s}.lock_acquire(p_namespace text, p_key text, p_owner bytea, p_lease bigint,
                                 p_pinned_now bigint)
RETURNS TABLE (r_acquired boolean, r_fence bigint, r_owner bytea, r_lease_until bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now bigint := {s}.now_ms(p_pinned_now);
    r {s}.locks%ROWTYPE;
BEGIN
    -- A live holder is answered from a plain read: nothing is written, no row lock is taken.
    SELECT * INTO r FROM {s}.locks l WHERE l.namespace = p_namespace AND l.key = p_key;
    IF FOUND AND r.owner IS NOT NULL AND r.lease_until > v_now THEN
        RETURN QUERY SELECT false, r.fence, r.owner, r.lease_until;
        RETURN;
    END IF;
    -- Acquire: absent, released, or its lease ended on the store's clock.
    INSERT INTO {s}.locks AS l (namespace, key, fence, owner, lease_until)
    VALUES (p_namespace, p_key, 1, p_owner, v_now + p_lease)
    ON CONFLICT ON CONSTRAINT locks_pkey DO UPDATE SET
        fence = l.fence + 1, owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
    WHERE l.owner IS NULL OR l.lease_until <= v_now
    RETURNING l.* INTO r;
    IF FOUND THEN
        RETURN QUERY SELECT true, r.fence, r.owner, r.lease_until;
        RETURN;
    END IF;
    -- Refused: ON CONFLICT holds the row's lock, so this fresh read sees the live holder.
    SELECT * INTO STRICT r FROM {s}.locks l WHERE l.namespace = p_namespace AND l.key = p_key;
    RETURN QUERY SELECT false, r.fence, r.owner, r.lease_until;
END;
$$;
";

/// The holder's row: `$1`–`$4` the key, owner and fence.
const HOLDER: &str = "namespace = $1 AND key = $2 AND owner = $3 AND fence = $4";

/// The statements of the lock store, for one schema.
#[derive(Debug)]
pub(crate) struct LockStatements {
    /// `$1` namespace, `$2` key, `$3` owner, `$4` lease ms, `$5` pinned time.
    pub(crate) acquire: String,
    /// `$1`–`$4` the holder, `$5` pinned time, `$6` lease ms.
    pub(crate) renew: String,
    /// `$1`–`$4` the holder.
    pub(crate) release: String,
    /// `$1`–`$4` the holder, `$5` pinned time, `$6` the next owner, `$7` lease ms.
    pub(crate) hand_over: String,
    /// `$1` namespace, `$2` key.
    pub(crate) read: String,
}

impl LockStatements {
    /// The statements on the tables of `schema`.
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.as_str();
        LockStatements {
            acquire: format!("SELECT * FROM {s}.lock_acquire($1, $2, $3, $4, $5)"),
            renew: format!(
                "UPDATE {s}.locks SET lease_until = {s}.now_ms($5) + $6 WHERE {HOLDER} RETURNING 1"
            ),
            release: format!(
                "UPDATE {s}.locks SET owner = NULL, lease_until = NULL WHERE {HOLDER} RETURNING 1"
            ),
            hand_over: format!(
                "UPDATE {s}.locks SET fence = fence + 1, owner = $6, \
                 lease_until = {s}.now_ms($5) + $7 WHERE {HOLDER} RETURNING fence, lease_until"
            ),
            read: format!(
                "SELECT fence, owner, lease_until FROM {s}.locks WHERE namespace = $1 AND key = $2"
            ),
        }
    }
}
