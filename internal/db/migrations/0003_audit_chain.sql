-- Tamper-evident audit trail: every audit_events row is hash-chained to the
-- one before, a one-row chain head serializes appends, and signed checkpoints
-- of the head are recorded (and anchored in a write-once bucket by the
-- application).
--
-- Canonical encoding (must stay identical to internal/audit/chain.go):
--
--   hash = SHA-256( f('openvisit.audit.v1') || f(prev_hash) || be64(seq)
--                   || be64(at as microseconds since 1970-01-01 UTC)
--                   || f(actor_id) || f(actor_role) || f(action)
--                   || f(resource_type) || f(resource_id) || f(patient_id)
--                   || f(visit_id) || f(ip) || f(user_agent) || f(outcome)
--                   || f(reason) )
--   f(x)  = be32(byte length of x) || x       (text as UTF-8)
--   be64/be32 = big-endian two's complement; the first row's prev_hash is
--   32 zero bytes.
--
-- The hash is computed here, inside the database, from the stored values, so
-- what is hashed is exactly what is kept (timestamptz keeps microseconds).

CREATE FUNCTION audit_field(x bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT int4send(length(x)) || x $$;

CREATE FUNCTION audit_field(x text) RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT audit_field(convert_to(x, 'UTF8')) $$;

CREATE FUNCTION audit_event_hash(
    prev_hash bytea, seq bigint, at timestamptz,
    actor_id text, actor_role text, action text, resource_type text, resource_id text,
    patient_id text, visit_id text, ip text, user_agent text, outcome text, reason text
) RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT sha256(
        audit_field('openvisit.audit.v1'::text)
        || audit_field(prev_hash)
        || int8send(seq)
        || int8send((extract(epoch FROM at) * 1000000)::bigint)
        || audit_field(actor_id) || audit_field(actor_role) || audit_field(action)
        || audit_field(resource_type) || audit_field(resource_id) || audit_field(patient_id)
        || audit_field(visit_id) || audit_field(ip) || audit_field(user_agent)
        || audit_field(outcome) || audit_field(reason))
$$;

-- Chain the rows written before this migration: number them 1, 2, 3… in
-- their original order (bigserial leaves gaps where inserts rolled back) and
-- hash them. The append-only trigger is lifted for this transaction only.
ALTER TABLE audit_events ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete;
DO $$
DECLARE
    r    audit_events;
    n    bigint := 0;
    prev bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
    h    bytea;
BEGIN
    FOR r IN SELECT * FROM audit_events ORDER BY seq LOOP
        n := n + 1;
        h := audit_event_hash(prev, n, r.at, r.actor_id, r.actor_role, r.action, r.resource_type,
            r.resource_id, r.patient_id, r.visit_id, r.ip, r.user_agent, r.outcome, r.reason);
        UPDATE audit_events SET seq = n, prev_hash = prev, hash = h WHERE seq = r.seq;
        prev := h;
    END LOOP;
END;
$$;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete;

-- seq is assigned from the chain head, never from a sequence: a sequence
-- burns values on rollback and the chain must be gapless.
ALTER TABLE audit_events ALTER COLUMN seq DROP DEFAULT;
DROP SEQUENCE audit_events_seq_seq;
ALTER TABLE audit_events
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL,
    ADD CONSTRAINT audit_events_seq_positive CHECK (seq > 0),
    ADD CONSTRAINT audit_events_prev_hash_len CHECK (length(prev_hash) = 32),
    ADD CONSTRAINT audit_events_hash_len CHECK (length(hash) = 32),
    ADD CONSTRAINT audit_events_at_finite CHECK (isfinite(at));

-- The chain head: the last row's seq and hash (0 and zeros when empty). Its
-- row lock is what serializes appends, across processes too.
CREATE TABLE audit_chain_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL CHECK (seq >= 0),
    hash      bytea NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO audit_chain_head (seq, hash)
SELECT coalesce(max(seq), 0),
       coalesce((SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1),
                '\x0000000000000000000000000000000000000000000000000000000000000000')
FROM audit_events;

-- Every insert, whoever makes it, is chained: seq, prev_hash and hash are
-- set here whatever the INSERT said. The head row stays locked until the
-- inserting transaction ends, so concurrent appenders queue in seq order and
-- a rolled-back insert gives its seq back. SECURITY DEFINER: the application
-- role may read the head but not write it.
CREATE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    head audit_chain_head;
BEGIN
    SELECT * INTO STRICT head FROM audit_chain_head FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.prev_hash := head.hash;
    NEW.hash := audit_event_hash(NEW.prev_hash, NEW.seq, NEW.at, NEW.actor_id, NEW.actor_role,
        NEW.action, NEW.resource_type, NEW.resource_id, NEW.patient_id, NEW.visit_id, NEW.ip,
        NEW.user_agent, NEW.outcome, NEW.reason);
    UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash;
    RETURN NEW;
END;
$$;
-- Pin the search path of the definer function (pg_temp last, so a caller's
-- temporary table cannot stand in for the head).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_events_chain() SET search_path = %I, pg_catalog, pg_temp',
        current_schema());
END;
$$;
REVOKE ALL ON FUNCTION audit_events_chain() FROM PUBLIC;
CREATE TRIGGER audit_events_chain
    BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_chain();

CREATE TRIGGER audit_chain_head_no_delete
    BEFORE DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_chain_head_no_truncate
    BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- Signed checkpoints of the chain head. The signature is Ed25519 over
-- f('openvisit.audit.checkpoint.v1') || be64(seq) || f(head_hash) ||
-- be64(signed_at in UTC microseconds). anchored_at is set when the same
-- checkpoint was written to the write-once bucket (object_key and
-- object_version name it there); NULL when that write failed.
CREATE TABLE audit_checkpoints (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq            bigint NOT NULL CHECK (seq > 0),
    head_hash      bytea NOT NULL CHECK (length(head_hash) = 32),
    signature      bytea NOT NULL CHECK (length(signature) = 64),
    key_id         text NOT NULL CHECK (length(key_id) <= 64),
    signed_at      timestamptz NOT NULL CHECK (isfinite(signed_at)),
    anchored_at    timestamptz,
    object_key     text NOT NULL DEFAULT '' CHECK (length(object_key) <= 256),
    object_version text NOT NULL DEFAULT '' CHECK (length(object_version) <= 256)
);
CREATE INDEX audit_checkpoints_seq ON audit_checkpoints (seq);
CREATE TRIGGER audit_checkpoints_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- Only the owner may change audit rows. Whatever was granted (default
-- privileges from internal/db/roles.sql included), other roles keep at most
-- SELECT and INSERT on the audit tables and SELECT on the chain head.
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT DISTINCT c.relname,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS who
        FROM pg_class c
        CROSS JOIN LATERAL aclexplode(c.relacl) a
        LEFT JOIN pg_roles r ON r.oid = a.grantee
        WHERE c.oid IN ('audit_events'::regclass, 'audit_checkpoints'::regclass,
                        'audit_chain_head'::regclass)
          AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON %I FROM %s',
            g.relname, g.who);
        IF g.relname = 'audit_chain_head' THEN
            EXECUTE format('REVOKE INSERT ON %I FROM %s', g.relname, g.who);
        END IF;
    END LOOP;
END;
$$;
