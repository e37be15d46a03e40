-- Alert delivery (an outbox: the webhook sender marks what it delivered)
-- and breach incidents.

ALTER TABLE alerts
    ADD COLUMN notified_at     timestamptz,
    ADD COLUMN notify_attempts integer NOT NULL DEFAULT 0;
CREATE INDEX alerts_unnotified ON alerts (created_at) WHERE notified_at IS NULL;

CREATE TABLE incidents (
    id            uuid PRIMARY KEY,
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    discovered_at timestamptz NOT NULL,
    -- HIPAA: individuals are notified without unreasonable delay and no
    -- later than 60 days after discovery.
    notify_by     timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'notified', 'closed')),
    created_by    uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_events_actor_at ON audit_events (actor_id, at);
CREATE INDEX audit_events_patient ON audit_events (patient_id) WHERE patient_id <> '';
