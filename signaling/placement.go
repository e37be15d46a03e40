package signaling

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/visits"
)

// placement is where this server puts visits (visits.Placement): on the
// registry's least-loaded live media node, or on this process's node
// without a registry.
func (s *Server) placement() visits.Placement {
	return visits.Placement{Nodes: s.p.Nodes, Node: s.p.Node, Log: s.log}
}

// placeNew returns the node a visit created now goes on ("" unplaced).
func (s *Server) placeNew(ctx context.Context, tx pgx.Tx) (ids.NodeID, error) {
	return s.placement().New(ctx, tx)
}

// markPlaced records when visit was placed on node.
func (s *Server) markPlaced(ctx context.Context, tx pgx.Tx, visit ids.VisitID, node ids.NodeID) error {
	return s.placement().Placed(ctx, tx, visit, node)
}

// joinNode returns the node and WebSocket URL a participant joining visit
// must use, moving the visit off a dead or draining node within tx.
func (s *Server) joinNode(ctx context.Context, tx pgx.Tx, visit ids.VisitID, current ids.NodeID) (ids.NodeID, string, error) {
	return s.placement().ForJoin(ctx, tx, visit, current)
}
