-- Media node registry (internal/nodes): load from heartbeats, placement
-- memory, and the rooms a node has admitted participants to.
--
-- sfu_nodes.load (0001) holds the participants a node reported; rooms is
-- new. started_at is when the node's current process registered.
ALTER TABLE sfu_nodes
    ADD COLUMN rooms      integer NOT NULL DEFAULT 0 CHECK (rooms >= 0),
    ADD COLUMN started_at timestamptz NOT NULL DEFAULT now();

-- placed_at: when the control plane last put the visit on its node; recent
-- placements count as load until the node's heartbeat shows them.
ALTER TABLE visits ADD COLUMN placed_at timestamptz;
CREATE INDEX visits_node_placed ON visits (sfu_node_id, placed_at) WHERE placed_at IS NOT NULL;

-- A row per (node, visit) whose room admitted someone since the node's last
-- empty heartbeat: a draining node keeps these visits (their calls go on
-- there) and gives up the others. The node clears its rows when it reports
-- no rooms, and when it registers.
CREATE TABLE sfu_rooms (
    node_id   text NOT NULL REFERENCES sfu_nodes (id) ON DELETE CASCADE,
    visit_id  uuid NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, visit_id)
);
