-- Visit events out (internal/webhooks): subscriptions, the outbox of
-- deliveries and the delivery log.
--
-- An event is written by a trigger on the table whose change causes it, so
-- it commits in the same transaction as the change, from whatever process
-- or command made it (as the revocation notices are, 0008). The trigger
-- writes one delivery row per active subscription to the event's kind; the
-- row holds opaque IDs only. Whatever PHI a subscription is granted is read
-- when the delivery is sent, never stored here.
CREATE TABLE webhook_subscriptions (
    id          uuid PRIMARY KEY,
    url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    -- The HMAC secret, sealed with the server's secret key (keys.Sealer,
    -- purpose "webhook-secret"), bound to the subscription's ID.
    secret_enc  bytea NOT NULL CHECK (length(secret_enc) <= 512),
    kinds       text[] NOT NULL CHECK (cardinality(kinds) BETWEEN 1 AND 16),
    may_receive_phi boolean NOT NULL DEFAULT false,
    created_by  text NOT NULL DEFAULT '' CHECK (length(created_by) <= 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id        uuid NOT NULL,
    kind            text NOT NULL CHECK (length(kind) <= 64),
    visit_id        uuid NOT NULL,
    -- The participant (patient.waiting) or recording (recording.available)
    -- the event is about, '' for visit events.
    subject_id      text NOT NULL DEFAULT '' CHECK (length(subject_id) <= 64),
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    -- NULL: due at once.
    next_attempt_at timestamptz,
    finished_at     timestamptz
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (subscription_id, id) WHERE status = 'pending';

-- The delivery log: one row per attempt. No bodies: a status code and a
-- class of error (timeout, connect, tls, status, …), nothing the receiver said.
CREATE TABLE webhook_attempts (
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL,
    status_code integer NOT NULL DEFAULT 0,
    error_class text NOT NULL DEFAULT '' CHECK (length(error_class) <= 32),
    PRIMARY KEY (delivery_id, attempt)
);

CREATE FUNCTION webhook_emit(ev_kind text, ev_visit uuid, ev_subject text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ev uuid := gen_random_uuid();
BEGIN
    INSERT INTO webhook_deliveries (subscription_id, event_id, kind, visit_id, subject_id)
    SELECT s.id, ev, ev_kind, ev_visit, ev_subject FROM webhook_subscriptions s
    WHERE s.disabled_at IS NULL AND ev_kind = ANY (s.kinds)
    ORDER BY s.id;
END $$;

CREATE FUNCTION webhook_visit_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.demo THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM webhook_emit('visit.scheduled', NEW.id, '');
        RETURN NULL;
    END IF;
    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    CASE NEW.status
        WHEN 'in_progress' THEN PERFORM webhook_emit('visit.started', NEW.id, '');
        WHEN 'completed', 'cancelled' THEN PERFORM webhook_emit('visit.ended', NEW.id, '');
        WHEN 'no_show' THEN PERFORM webhook_emit('visit.no_show', NEW.id, '');
        ELSE NULL;
    END CASE;
    RETURN NULL;
END $$;

CREATE TRIGGER visits_webhook AFTER INSERT OR UPDATE OF status ON visits
    FOR EACH ROW EXECUTE FUNCTION webhook_visit_event();

CREATE FUNCTION webhook_participant_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role = 'patient' AND NEW.state = 'waiting'
       AND (TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM 'waiting') THEN
        PERFORM webhook_emit('patient.waiting', NEW.visit_id, NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER participants_webhook AFTER INSERT OR UPDATE OF state ON participants
    FOR EACH ROW EXECUTE FUNCTION webhook_participant_event();

CREATE FUNCTION webhook_recording_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'complete' AND OLD.status IS DISTINCT FROM 'complete' THEN
        PERFORM webhook_emit('recording.available', NEW.visit_id, NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER recordings_webhook AFTER UPDATE OF status ON recordings
    FOR EACH ROW EXECUTE FUNCTION webhook_recording_event();
