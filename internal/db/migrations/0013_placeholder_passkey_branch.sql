-- Placeholder that keeps versions without gaps on the passkey branch: version 13
-- belongs to another branch (0014 is OIDC). Delete this file when that branch's
-- migration is merged.
SELECT 1;
