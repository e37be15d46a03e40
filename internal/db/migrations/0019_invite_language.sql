-- The language of a patient's invite (issue 17, languages): the provider
-- chooses it when inviting; the invite email, its calendar file and the
-- patient's pages speak it (the patient may switch on the page). A code
-- of a catalogue file under web/static/i18n (en, es, …); the server checks
-- it against the catalogues, the column only bounds its shape, so a new
-- language needs no migration. Existing invites are English, as they were.
ALTER TABLE visit_invites
    ADD COLUMN lang text NOT NULL DEFAULT 'en'
        CHECK (lang ~ '^[a-z]{2,3}(-[A-Z]{2})?$');
