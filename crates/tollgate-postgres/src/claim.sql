-- The claim of one key, applying `tollgate::once::transition::claim` in one call.
-- Outcome kinds: 0 acquired, 1 in progress, 2 completed, 3 failed, 4 mismatch, 5 unknown.
-- p_on_expired: 0 take over, 1 mark unknown, 2 take over only from (p_from_owner, p_from_fence).

-- The answers that leave the record `r` as it is, or no row when its holder's lease lapsed
-- (taking it over or marking it unknown is a write).
CREATE FUNCTION {s}.once_refusal(r {s}.once, p_fingerprint bytea, p_waiting_for bigint,
                                  p_now bigint)
RETURNS TABLE (r_kind smallint, r_fence bigint, r_owner bytea, r_lease_until bigint,
               r_payload bytea, r_retryable boolean, r_taken_from bytea)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
               WHEN p_waiting_for IS NOT NULL AND r.state = 2 AND r.fence = p_waiting_for
                    AND r.fingerprint = p_fingerprint THEN 3
               WHEN r.fingerprint <> p_fingerprint THEN 4
               WHEN r.state = 0 THEN 1
               ELSE r.state + 1
           END::smallint,
           r.fence,
           CASE WHEN r.state = 0 THEN r.owner END,
           r.lease_until,
           r.payload,
           r.retryable,
           NULL::bytea
    WHERE (p_waiting_for IS NOT NULL AND r.state = 2 AND r.fence = p_waiting_for
           AND r.fingerprint = p_fingerprint)
       OR r.fingerprint <> p_fingerprint
       OR (r.state = 0 AND r.lease_until > p_now)
       OR r.state IN (1, 2)
$$;

CREATE FUNCTION {s}.once_claim(
    p_namespace text, p_key text, p_fingerprint bytea, p_owner bytea, p_lease bigint,
    p_on_expired smallint, p_from_owner bytea, p_from_fence bigint, p_waiting_for bigint,
    p_pinned_now bigint)
RETURNS TABLE (r_kind smallint, r_fence bigint, r_owner bytea, r_lease_until bigint,
               r_payload bytea, r_retryable boolean, r_taken_from bytea)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now bigint := {s}.now_ms(p_pinned_now);
    r {s}.once%ROWTYPE;
BEGIN
    -- Read-only fast path: a record that nobody may take (not past retention, not freed) and
    -- whose answer writes nothing (a live lease, a finished attempt, a mismatch) is answered
    -- from a plain read, without the row lock: racers losing to a live holder neither queue
    -- on the lock nor pay a commit. Correct without the lock because nothing is written;
    -- every acquisition still goes through the INSERT below.
    SELECT * INTO r FROM {s}.once o WHERE o.namespace = p_namespace AND o.key = p_key;
    IF FOUND AND NOT coalesce(r.expires_at <= v_now, false)
       AND NOT (r.state = 2 AND r.retryable) THEN
        RETURN QUERY SELECT * FROM {s}.once_refusal(r, p_fingerprint, p_waiting_for, v_now);
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    -- Acquire: absent, past retention, freed by a retryable failure, or lapsed and taken over.
    -- ON CONFLICT locks the existing row even when the WHERE refuses the update.
    INSERT INTO {s}.once AS o (namespace, key, fingerprint, fence, state, owner, lease_until)
    VALUES (p_namespace, p_key, p_fingerprint, 1, 0, p_owner, v_now + p_lease)
    ON CONFLICT ON CONSTRAINT once_pkey DO UPDATE SET
        fingerprint = EXCLUDED.fingerprint, fence = o.fence + 1, state = 0,
        owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until, payload = NULL,
        retryable = NULL, expires_at = NULL,
        taken_from = CASE WHEN o.state IN (0, 3) THEN o.owner END
    WHERE NOT (p_waiting_for IS NOT NULL AND o.state = 2 AND o.fence = p_waiting_for
               AND o.fingerprint = p_fingerprint)
      AND (o.expires_at <= v_now
           OR (o.state = 2 AND o.retryable)
           OR (o.fingerprint = p_fingerprint
               AND (o.state = 3 OR (o.state = 0 AND o.lease_until <= v_now))
               AND (p_on_expired = 0
                    OR (p_on_expired = 2 AND o.owner = p_from_owner
                        AND o.fence = p_from_fence))))
    RETURNING o.* INTO r;
    IF FOUND THEN
        RETURN QUERY SELECT 0::smallint, r.fence, r.owner, r.lease_until, NULL::bytea,
            NULL::boolean, r.taken_from;
        RETURN;
    END IF;
    -- Not acquired: the row exists and this transaction holds its lock, so this read (a new
    -- snapshot under READ COMMITTED) sees the version the WHERE refused, and nobody can
    -- change it before we answer.
    SELECT * INTO STRICT r FROM {s}.once o WHERE o.namespace = p_namespace AND o.key = p_key;
    RETURN QUERY SELECT * FROM {s}.once_refusal(r, p_fingerprint, p_waiting_for, v_now);
    IF FOUND THEN
        RETURN;
    END IF;
    -- A lapsed attempt this claim may not take over: its outcome is unknown.
    IF r.state = 0 THEN
        UPDATE {s}.once o SET state = 3, lease_until = NULL
        WHERE o.namespace = p_namespace AND o.key = p_key;
    END IF;
    RETURN QUERY SELECT 5::smallint, r.fence, r.owner, NULL::bigint, NULL::bytea,
        NULL::boolean, NULL::bytea;
END;
$$;
