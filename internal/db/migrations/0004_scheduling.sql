-- Scheduling, invites and the waiting room: patients as records (no
-- account), visits with a patient and reason, one-time invites confirmed by
-- date of birth, and each participant's place in the waiting room.

CREATE TABLE patients (
    id            uuid PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    date_of_birth date NOT NULL,
    email         text NOT NULL DEFAULT '' CHECK (length(email) <= 254),
    phone         text NOT NULL DEFAULT '' CHECK (length(phone) <= 40),
    -- Two-letter US state (or territory) of residence, for breach notices.
    state         text NOT NULL DEFAULT '' CHECK (state = '' OR state ~ '^[A-Z]{2}$'),
    created_by    uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_created_by ON patients (created_by);
CREATE INDEX patients_name ON patients (lower(name));

ALTER TABLE visits
    ADD COLUMN patient_id   uuid REFERENCES patients (id),
    ADD COLUMN reason       text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    ADD COLUMN waiting_at   timestamptz,
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN no_show_at   timestamptz;
CREATE INDEX visits_patient ON visits (patient_id);
CREATE INDEX visits_schedule ON visits (provider_id, scheduled_start);

-- A one-time invite: usable from one hour before the visit until its end,
-- revocable; bound to the first browser that confirms the date of birth.
CREATE TABLE visit_invites (
    id           uuid PRIMARY KEY,
    secret_hash  bytea NOT NULL UNIQUE,
    visit_id     uuid NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    used_at      timestamptz,
    dob_failures integer NOT NULL DEFAULT 0,
    locked_at    timestamptz
);
CREATE INDEX visit_invites_visit ON visit_invites (visit_id);

ALTER TABLE participants
    ADD COLUMN state       text NOT NULL DEFAULT 'admitted'
                           CHECK (state IN ('waiting', 'admitted', 'turned_away', 'removed', 'left')),
    ADD COLUMN invite_id   uuid REFERENCES visit_invites (id),
    ADD COLUMN admitted_at timestamptz,
    ADD COLUMN waiting_at  timestamptz;
