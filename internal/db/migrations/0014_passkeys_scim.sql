-- Passkeys (WebAuthn) as a second factor and as sign-in, the last sign-in
-- of each staff user, and machine clients (SCIM provisioning by an IdP).

-- When a staff session was last opened (internal/signin open(), the one
-- place a staff session starts); NULL: never. The admin page's dormant
-- accounts list reads it.
ALTER TABLE users
    ADD COLUMN last_signin_at timestamptz,
    -- The identity provider's id for the account (SCIM externalId).
    ADD COLUMN external_id text CHECK (length(external_id) BETWEEN 1 AND 256);

-- A staff user's registered passkeys. The columns are what
-- github.com/go-webauthn/webauthn's Credential needs to verify an assertion
-- and to check a clone (sign_count), plus a name the user chose.
CREATE TABLE webauthn_credentials (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id    bytea NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 16 AND 1023),
    public_key       bytea NOT NULL,
    attestation_type text NOT NULL DEFAULT '',
    aaguid           bytea,
    sign_count       bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    clone_warning    boolean NOT NULL DEFAULT false,
    transports       text[] NOT NULL DEFAULT '{}',
    attachment       text NOT NULL DEFAULT '',
    user_present     boolean NOT NULL DEFAULT false,
    user_verified    boolean NOT NULL DEFAULT false,
    backup_eligible  boolean NOT NULL DEFAULT false,
    backup_state     boolean NOT NULL DEFAULT false,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at       timestamptz NOT NULL,
    last_used_at     timestamptz
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- A WebAuthn ceremony in progress: the challenge and what the library
-- checks at its end (webauthn.SessionData as JSON). The browser holds only
-- a random token in a cookie; this row is found by its hash, used once and
-- short-lived. A registration is bound to the staff session that began it.
CREATE TABLE webauthn_ceremonies (
    token_hash   bytea PRIMARY KEY,
    purpose      text NOT NULL CHECK (purpose IN ('register', 'signin', 'second_factor')),
    user_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    session_hash bytea REFERENCES sessions (id_hash) ON DELETE CASCADE,
    data         jsonb NOT NULL,
    expires_at   timestamptz NOT NULL,
    CHECK (purpose <> 'register' OR (user_id IS NOT NULL AND session_hash IS NOT NULL))
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);

-- Machine clients: software that calls the API with a bearer token instead
-- of a browser session. Today only an identity provider's SCIM client
-- (kind 'scim', name: the IdP); the table is the registry further kinds
-- (API clients) join. Only a SHA-256 hash of the token is kept.
CREATE TABLE machine_clients (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('scim')),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL DEFAULT '',
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX machine_clients_name ON machine_clients (kind, name);
