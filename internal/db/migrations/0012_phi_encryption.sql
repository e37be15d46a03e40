-- PHI at rest (internal/phi, docs/DESIGN.md decision 13): every column that
-- holds PHI gets a bytea ciphertext column beside it; the plaintext column is
-- no longer written, and `openvisit phi migrate` (also run in the background
-- at serve start) encrypts existing rows in batches and empties it. The
-- plaintext columns are dropped by a later migration once every deployment
-- has run the job (a row with plaintext left makes that migration fail).
--
-- Ciphertext: 0x01 || data key ID (be32) || nonce (12) || AES-256-GCM, with
-- associated data binding it to table, column and row (internal/phi/cipher.go).

-- Data keys: random 256-bit keys wrapped by a KEK of the recording keyring.
-- purpose is the table whose fields a data key seals (one key per table per
-- calendar month, period 'YYYY-MM'), or 'index' for the blind-index key
-- (period: its generation). The wrap binds purpose and period.
CREATE TABLE phi_data_keys (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    purpose    text NOT NULL CHECK (length(purpose) BETWEEN 1 AND 64),
    period     text NOT NULL CHECK (length(period) BETWEEN 1 AND 16),
    kek_id     text NOT NULL CHECK (length(kek_id) <= 64),
    wrapped    bytea NOT NULL CHECK (length(wrapped) <= 128),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (purpose, period)
);
CREATE INDEX phi_data_keys_kek ON phi_data_keys (kek_id);

ALTER TABLE patients
    ADD COLUMN name_ct          bytea CHECK (length(name_ct) <= 1024),
    ADD COLUMN date_of_birth_ct bytea CHECK (length(date_of_birth_ct) <= 256),
    ADD COLUMN email_ct         bytea CHECK (length(email_ct) <= 1024),
    ADD COLUMN phone_ct         bytea CHECK (length(phone_ct) <= 256),
    -- Blind indexes: HMAC-SHA-256 of the normalised value under the index
    -- key bidx_key_id (internal/phi/index.go). NULL email: none given.
    ADD COLUMN email_bidx       bytea CHECK (length(email_bidx) = 32),
    ADD COLUMN dob_bidx         bytea CHECK (length(dob_bidx) = 32),
    ADD COLUMN bidx_key_id      integer REFERENCES phi_data_keys (id),
    ALTER COLUMN name DROP NOT NULL,
    ALTER COLUMN date_of_birth DROP NOT NULL,
    ALTER COLUMN email DROP NOT NULL,
    ALTER COLUMN email DROP DEFAULT,
    ALTER COLUMN phone DROP NOT NULL,
    ALTER COLUMN phone DROP DEFAULT;
DROP INDEX patients_name;
CREATE INDEX patients_email_bidx ON patients (email_bidx) WHERE email_bidx IS NOT NULL;
CREATE INDEX patients_dob_bidx ON patients (dob_bidx);
CREATE INDEX patients_unencrypted ON patients (id) WHERE name_ct IS NULL;

-- Name search: one row per prefix of each name word (MinPrefix..MaxPrefix
-- runes), each an HMAC under the index key key_id.
CREATE TABLE patient_name_tokens (
    patient_id uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    token      bytea NOT NULL CHECK (length(token) = 32),
    key_id     integer NOT NULL REFERENCES phi_data_keys (id),
    PRIMARY KEY (patient_id, token)
);
CREATE INDEX patient_name_tokens_token ON patient_name_tokens (token, patient_id);

ALTER TABLE visits
    ADD COLUMN reason_ct bytea CHECK (length(reason_ct) <= 4096),
    ALTER COLUMN reason DROP NOT NULL,
    ALTER COLUMN reason DROP DEFAULT;
CREATE INDEX visits_unencrypted ON visits (id) WHERE reason IS NOT NULL;

ALTER TABLE break_glass
    ADD COLUMN reason_ct bytea CHECK (length(reason_ct) <= 16384),
    ALTER COLUMN reason DROP NOT NULL;

ALTER TABLE incidents
    ADD COLUMN title_ct       bytea CHECK (length(title_ct) <= 4096),
    ADD COLUMN description_ct bytea CHECK (length(description_ct) <= 65536),
    ALTER COLUMN title DROP NOT NULL,
    ALTER COLUMN description DROP NOT NULL,
    ALTER COLUMN description DROP DEFAULT;

ALTER TABLE dev_outbox
    ADD COLUMN recipient_ct bytea CHECK (length(recipient_ct) <= 4096),
    ADD COLUMN subject_ct   bytea CHECK (length(subject_ct) <= 8192),
    ADD COLUMN body_ct      bytea CHECK (length(body_ct) <= 524288),
    ALTER COLUMN recipient DROP NOT NULL,
    ALTER COLUMN subject DROP NOT NULL,
    ALTER COLUMN body DROP NOT NULL;

ALTER TABLE dev_outbox_attachments
    ADD COLUMN data_ct bytea CHECK (length(data_ct) <= 1048704),
    ALTER COLUMN data DROP NOT NULL;
