-- The development mail outbox (signaling/outbox.go). With environment
-- development and no smtp.host, OpenVisit keeps the mail it would send here,
-- for staff to read at /outbox, instead of sending it.
--
-- DEVELOPMENT ONLY. A message holds PHI (the patient's email address, the
-- visit's time) and a one-time invite link. A production process never
-- creates the outbox, so it never writes these tables and serves no route
-- that reads them; the tables exist everywhere only because migrations are
-- the same everywhere. At most the newest 500 messages are kept.
CREATE TABLE dev_outbox (
    id         uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Opaque IDs of who sent it and whom and what it is about: a provider
    -- reads only their own mail; reads are audited naming the patient.
    sent_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    patient_id uuid,
    visit_id   uuid,
    recipient  text NOT NULL CHECK (length(recipient) <= 320),
    subject    text NOT NULL CHECK (length(subject) <= 1000),
    body       text NOT NULL CHECK (length(body) <= 100000)
);
CREATE INDEX dev_outbox_created ON dev_outbox (created_at DESC, id);

CREATE TABLE dev_outbox_attachments (
    message_id   uuid NOT NULL REFERENCES dev_outbox (id) ON DELETE CASCADE,
    n            integer NOT NULL CHECK (n >= 0),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    content_type text NOT NULL CHECK (length(content_type) <= 200),
    data         bytea NOT NULL CHECK (length(data) <= 1048576),
    PRIMARY KEY (message_id, n)
);
