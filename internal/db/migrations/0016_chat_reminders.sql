-- In-visit chat and visit reminders (issue 17).
--
-- chat_messages: text sent to everyone in a visit, kept with the visit.
-- The text is PHI (free text about a patient): it is stored only as
-- ciphertext (phi.ChatBody, AES-256-GCM bound to table, column and row);
-- the plaintext column exists for the PHI declaration's shape and may
-- never hold a value. seq orders a visit's messages: it is assigned under
-- the visit's row lock, so every reader sees one order.
CREATE TABLE chat_messages (
    id          uuid PRIMARY KEY,
    visit_id    uuid NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
    seq         bigint NOT NULL CHECK (seq > 0),
    sender_id   text NOT NULL CHECK (length(sender_id) <= 64),
    sender_role text NOT NULL CHECK (sender_role IN ('patient', 'provider')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    body        text CHECK (body IS NULL),
    body_ct     bytea NOT NULL CHECK (length(body_ct) <= 16384),
    UNIQUE (visit_id, seq)
);

-- visit_reminders: one row per (visit, offset) once its reminder is sent.
-- The row is inserted in the transaction that rotates the invite and
-- sends the reminder, after the visit row is claimed with FOR UPDATE SKIP
-- LOCKED; the primary key makes a second sender (another API replica)
-- skip it, so each reminder goes once.
CREATE TABLE visit_reminders (
    visit_id       uuid NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
    offset_seconds integer NOT NULL CHECK (offset_seconds > 0),
    sent_at        timestamptz NOT NULL,
    invite_id      uuid NOT NULL,
    email          boolean NOT NULL,
    sms            boolean NOT NULL,
    PRIMARY KEY (visit_id, offset_seconds)
);
