-- Accounts, sessions and access: staff users (providers, admins) with
-- argon2id passwords and TOTP, hashed session tokens, one-time setup links,
-- break-glass grants and the alerts they raise.

CREATE TABLE users (
    id               uuid PRIMARY KEY,
    email            text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name             text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    role             text NOT NULL CHECK (role IN ('provider', 'admin')),
    password_hash    text,
    -- TOTP secrets are sealed with the server's secret key (AES-256-GCM);
    -- a pending secret waits for its first valid code during enrolment.
    totp_secret_enc  bytea,
    totp_pending_enc bytea,
    totp_last_step   bigint NOT NULL DEFAULT 0,
    mfa_enrolled_at  timestamptz,
    failed_logins    integer NOT NULL DEFAULT 0,
    last_failed_at   timestamptz,
    locked_at        timestamptz,
    disabled_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- One-time links to set a password and enrol TOTP (invite, MFA reset).
CREATE TABLE setup_links (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('invite', 'reset_mfa')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

-- Sessions of staff (user_id) and of patients admitted by an invite
-- (visit_id, participant_id). Only a hash of the cookie value is stored.
CREATE TABLE sessions (
    id_hash        bytea PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('staff', 'patient')),
    user_id        uuid REFERENCES users (id) ON DELETE CASCADE,
    visit_id       uuid REFERENCES visits (id) ON DELETE CASCADE,
    participant_id uuid REFERENCES participants (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoke_reason  text NOT NULL DEFAULT '',
    ip             text NOT NULL DEFAULT '',
    user_agent     text NOT NULL DEFAULT '',
    CHECK ((kind = 'staff' AND user_id IS NOT NULL) OR (kind = 'patient' AND visit_id IS NOT NULL))
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

ALTER TABLE visits ADD COLUMN provider_id uuid REFERENCES users (id);
CREATE INDEX visits_provider ON visits (provider_id);
ALTER TABLE participants ADD COLUMN user_id uuid REFERENCES users (id);

-- Emergency access: a provider reaches a visit that is not theirs for a
-- limited time, with a written reason, flagged for admin review.
CREATE TABLE break_glass (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    visit_id    uuid NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 20 AND 2000),
    granted_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    reviewed_by uuid REFERENCES users (id),
    reviewed_at timestamptz
);
CREATE INDEX break_glass_active ON break_glass (user_id, visit_id, expires_at);

CREATE TABLE alerts (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject         text NOT NULL DEFAULT '',
    detail          text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_by uuid REFERENCES users (id),
    acknowledged_at timestamptz
);
CREATE INDEX alerts_open ON alerts (created_at) WHERE acknowledged_at IS NULL;
