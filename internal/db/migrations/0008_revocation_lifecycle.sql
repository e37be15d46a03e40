-- Revocation that reaches every media node, and one lifecycle for a visit's
-- recording (docs: internal/revocation, internal/visits, internal/store
-- recording_controls).
--
-- 1. A join token remembers the session that minted it, so that ending that
--    session (sign-out, expiry, sign-out everywhere, a disabled account)
--    can find the live media connection it admitted. NULL for tokens minted
--    without a session (demo links, the recorder).
ALTER TABLE join_tokens ADD COLUMN session_hash bytea;
CREATE INDEX join_tokens_session ON join_tokens (session_hash) WHERE session_hash IS NOT NULL;

-- 2. Every change that can end someone's right to be in a call announces
--    itself on the openvisit_revoke channel when its transaction commits,
--    whichever process or path (API, CLI, a later SCIM or FHIR endpoint)
--    made it. Media nodes listen and re-check their live connections
--    (internal/revocation); a periodic re-check catches a missed notice and
--    time-based ends (idle and absolute session timeouts, break-glass
--    expiry). The payload is empty: PostgreSQL folds identical notices of one
--    transaction into one, and every node re-checks all of its connections.
CREATE FUNCTION notify_revocation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('openvisit_revoke', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER sessions_revoked
    AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION notify_revocation();
CREATE TRIGGER sessions_deleted
    AFTER DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_revocation();
CREATE TRIGGER users_disabled
    AFTER UPDATE OF disabled_at, role ON users
    FOR EACH ROW WHEN (NEW.disabled_at IS DISTINCT FROM OLD.disabled_at OR NEW.role IS DISTINCT FROM OLD.role)
    EXECUTE FUNCTION notify_revocation();
CREATE TRIGGER users_deleted
    AFTER DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_revocation();
CREATE TRIGGER participants_left
    AFTER UPDATE OF state ON participants
    FOR EACH ROW WHEN (OLD.state = 'admitted' AND NEW.state <> 'admitted')
    EXECUTE FUNCTION notify_revocation();
CREATE TRIGGER participants_deleted
    AFTER DELETE ON participants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_revocation();
CREATE TRIGGER visits_closed
    AFTER UPDATE OF status ON visits
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'cancelled', 'no_show')
                       AND OLD.status NOT IN ('completed', 'cancelled', 'no_show'))
    EXECUTE FUNCTION notify_revocation();
CREATE TRIGGER visits_deleted
    AFTER DELETE ON visits
    FOR EACH STATEMENT EXECUTE FUNCTION notify_revocation();
CREATE TRIGGER break_glass_changed
    AFTER UPDATE OF expires_at OR DELETE ON break_glass
    FOR EACH STATEMENT EXECUTE FUNCTION notify_revocation();

-- 3. The recording of a visit (recording_controls) follows one state
--    machine (internal/store/reclife.go): off → starting → recording ⇄
--    not_working → off. "active" stays the switch; the recorder holds a
--    lease on the visit (claim_id, recorder_node, heartbeat_at: a claim is
--    one atomic UPDATE, so two recorders, or two loops of one, cannot both
--    record a visit), and reports when it last wrote media (media_at), which
--    is what the indicator shows.
ALTER TABLE recording_controls
    ADD COLUMN claim_id       uuid,
    ADD COLUMN recorder_node  text NOT NULL DEFAULT '' CHECK (length(recorder_node) <= 64),
    ADD COLUMN heartbeat_at   timestamptz,
    ADD COLUMN media_at       timestamptz,
    ADD COLUMN first_media_at timestamptz,
    ADD COLUMN alerted_at     timestamptz;

-- A visit that ended before this migration keeps no recording switched on.
UPDATE recording_controls c SET active = false, stopped_at = COALESCE(c.stopped_at, now()),
    stop_reason = 'visit_ended', updated_at = now()
FROM visits v
WHERE v.id = c.visit_id AND c.active AND v.status IN ('completed', 'cancelled', 'no_show');
