-- Staff sign-in through the clinic's identity providers (internal/sso).
--
-- An account is linked to a person at an issuer by the pair (issuer,
-- subject), never by email: an address can be reassigned at the IdP, the
-- subject cannot. A user has at most one link per issuer.
--
-- refresh_token_enc holds the latest refresh token (offline_access),
-- sealed with the server's secret key (keys.Sealer, purpose
-- "oidc-refresh-token"), bound to the link's issuer and subject. The hourly
-- sweep uses it to ask the issuer whether it still vouches for the person;
-- a refusal disables the account (and so ends its sessions and calls).
CREATE TABLE oidc_links (
    issuer            text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 32),
    subject           text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_token_enc bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_signin_at    timestamptz,
    -- When the issuer last vouched (a sign-in or a refresh that succeeded).
    vouched_at        timestamptz,
    PRIMARY KEY (issuer, subject),
    UNIQUE (user_id, issuer)
);
