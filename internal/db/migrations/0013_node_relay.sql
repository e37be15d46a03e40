-- A media node's TURN relay URLs (sfu/turn: turn:…udp, turn:…tcp, turns:…),
-- registered with the node so that the control plane — in its own process
-- on a cluster — hands them out in join grants for visits placed there,
-- with credentials it mints from the relay's shared secret.
ALTER TABLE sfu_nodes
    ADD COLUMN relay_urls text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(relay_urls) <= 3);
