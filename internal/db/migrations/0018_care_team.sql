-- The whole care team (issue 17): a visit's participants have roles beyond
-- patient and provider, each invitee has their own one-time invite, and
-- staff other than the visit's provider may be added as guest providers.

-- Caregivers and interpreters are invitees like the patient; a guest
-- provider is a 'provider' participant whose user is in visit_staff.
ALTER TABLE participants DROP CONSTRAINT participants_role_check;
ALTER TABLE participants ADD CONSTRAINT participants_role_check
    CHECK (role IN ('patient', 'caregiver', 'interpreter', 'provider', 'recorder'));

-- Each invite names the role it admits. A patient's new invite revokes the
-- patient's earlier ones (a re-issued link); invites of other roles are
-- separate and revoked one by one. The invitee's name and email are PHI:
-- only their ciphertexts are written (internal/phi); the plaintext columns
-- exist for the declaration and must stay empty.
ALTER TABLE visit_invites
    ADD COLUMN role            text NOT NULL DEFAULT 'patient'
                               CHECK (role IN ('patient', 'caregiver', 'interpreter')),
    ADD COLUMN invitee_name    text CHECK (invitee_name IS NULL),
    ADD COLUMN invitee_name_ct bytea CHECK (length(invitee_name_ct) <= 512),
    ADD COLUMN invitee_email   text CHECK (invitee_email IS NULL),
    ADD COLUMN invitee_email_ct bytea CHECK (length(invitee_email_ct) <= 512);
CREATE INDEX visit_invites_visit_role ON visit_invites (visit_id, role) WHERE revoked_at IS NULL;

-- Guest providers: staff accounts the visit's provider added. They admit,
-- record and end like the visit's provider, for this visit only.
CREATE TABLE visit_staff (
    visit_id uuid NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id),
    added_by uuid NOT NULL REFERENCES users (id),
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (visit_id, user_id)
);
