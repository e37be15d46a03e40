-- Placeholder that keeps versions without gaps on the oidc branch: version 13
-- belongs to another branch. Delete this file when that branch's migration is merged.
SELECT 1;
