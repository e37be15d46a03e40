-- A participant's media connection as the media node hosting it reports it
-- (its PeerConnection state): what the provider's waiting panel shows. The
-- node writes it on each change (not per packet); media_state_at orders
-- reports, so a late one from a node the visit has left cannot overwrite a
-- newer one. media_failed_at keeps the last failure while the participant
-- tries again (the panel says "could not connect; trying again").
ALTER TABLE participants
    ADD COLUMN media_state     text CHECK (media_state IN ('connecting', 'connected', 'disconnected', 'failed', 'left')),
    ADD COLUMN media_state_at  timestamptz,
    ADD COLUMN media_failed_at timestamptz;
