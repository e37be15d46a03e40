-- Machine clients of kind 'ehr': an EHR or integration engine that signs
-- in with OAuth 2.0 client credentials and a signed JWT assertion (SMART
-- Backend Services, RFC 7523). It has no static token: it registers a
-- public key (a JWKS document) and is granted scopes; the token endpoint
-- issues it short-lived access tokens, kept only as SHA-256 hashes. And a
-- patient's medical record number (an EHR identifier), encrypted with an
-- exact blind index so that FHIR Patient?identifier= can find it.

ALTER TABLE machine_clients
    DROP CONSTRAINT machine_clients_kind_check,
    ADD CONSTRAINT machine_clients_kind_check CHECK (kind IN ('scim', 'ehr')),
    ALTER COLUMN token_hash DROP NOT NULL,
    -- The client's public keys (a JWKS document of RS384/ES384 keys).
    ADD COLUMN jwks jsonb,
    -- The SMART system scopes granted (system/Patient.read, ...).
    ADD COLUMN scopes text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT machine_clients_credential CHECK (
        (kind = 'scim' AND token_hash IS NOT NULL) OR (kind = 'ehr' AND jwks IS NOT NULL));

-- Access tokens issued by POST /oauth/token: the hash of the opaque token,
-- its client and scopes, and when it expires. Revoking the client ends its
-- tokens at once (the lookup joins on the client's revoked_at).
CREATE TABLE client_access_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    client_id  uuid NOT NULL REFERENCES machine_clients (id) ON DELETE CASCADE,
    scopes     text[] NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX client_access_tokens_expiry ON client_access_tokens (expires_at);

-- The jti of every client assertion accepted, kept until the assertion
-- expires, so that one cannot be replayed.
CREATE TABLE client_assertion_jtis (
    client_id  uuid NOT NULL REFERENCES machine_clients (id) ON DELETE CASCADE,
    jti        text NOT NULL CHECK (length(jti) BETWEEN 1 AND 255),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);

ALTER TABLE patients
    -- The medical record number as the EHR knows it ("system|value"),
    -- sealed like the other PHI columns, found by its exact blind index.
    -- The plaintext column exists for the PHI declaration's shape (an
    -- encrypted field names its plaintext column) and is never written.
    ADD COLUMN mrn text,
    ADD COLUMN mrn_ct bytea,
    ADD COLUMN mrn_bidx bytea;
CREATE UNIQUE INDEX patients_mrn_bidx ON patients (mrn_bidx) WHERE mrn_bidx IS NOT NULL;
