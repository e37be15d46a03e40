-- Foundation schema: media nodes, visits, participants, join tokens, demo
-- links and the append-only audit table.

CREATE TABLE sfu_nodes (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    url          text NOT NULL,
    public_ip    text NOT NULL DEFAULT '',
    capacity     integer NOT NULL DEFAULT 0 CHECK (capacity >= 0),
    load         integer NOT NULL DEFAULT 0 CHECK (load >= 0),
    draining     boolean NOT NULL DEFAULT false,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE visits (
    id              uuid PRIMARY KEY,
    status          text NOT NULL DEFAULT 'scheduled'
                    CHECK (status IN ('scheduled', 'waiting', 'in_progress', 'completed', 'cancelled', 'no_show')),
    scheduled_start timestamptz,
    scheduled_end   timestamptz,
    sfu_node_id     text REFERENCES sfu_nodes (id),
    demo            boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    ended_at        timestamptz,
    CHECK (scheduled_end IS NULL OR scheduled_start IS NULL OR scheduled_end > scheduled_start)
);

CREATE TABLE participants (
    id         uuid PRIMARY KEY,
    visit_id   uuid NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('patient', 'provider', 'recorder')),
    -- subject: the opaque ID of the user or invite behind the participant.
    subject    text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    joined_at  timestamptz,
    left_at    timestamptz
);
CREATE INDEX participants_visit ON participants (visit_id);

CREATE TABLE join_tokens (
    jti            text PRIMARY KEY CHECK (length(jti) <= 64),
    visit_id       uuid NOT NULL,
    participant_id uuid NOT NULL,
    role           text NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX join_tokens_expires ON join_tokens (expires_at);

-- One-time links to a demo visit, minted only in demo mode (development).
-- Only a hash of the link's secret is stored.
CREATE TABLE demo_links (
    code_hash      bytea PRIMARY KEY,
    visit_id       uuid NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
    participant_id uuid NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

CREATE TABLE audit_events (
    seq           bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_id      text NOT NULL DEFAULT '',
    actor_role    text NOT NULL DEFAULT '',
    action        text NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    resource_type text NOT NULL DEFAULT '',
    resource_id   text NOT NULL DEFAULT '',
    patient_id    text NOT NULL DEFAULT '',
    visit_id      text NOT NULL DEFAULT '',
    ip            text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT '',
    outcome       text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    reason        text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_visit ON audit_events (visit_id) WHERE visit_id <> '';

-- The audit table is append-only: refuse changes even from roles that hold
-- the privilege (the role split is in a later migration).
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
