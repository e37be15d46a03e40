package signaling

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/nodes"
	"github.com/openvisit/openvisit/internal/store"
)

// Placement: a visit's room lives on one media node. A new visit goes on
// the least-loaded live node (internal/nodes); a join finds the visit's
// node and, when that node has died or is draining without the visit's
// room, moves the visit to a live node first, so that participants whose
// socket dropped call join again and land together on the new node.

var errNoMediaNode = httpx.E(httpx.KindUnavailable, "no_media_node", "No media server is available for this visit right now.")

// placeNew returns the node a visit created now goes on. Without a live
// node the visit is created unplaced (""): scheduling does not depend on
// media, and the first join places it.
func (s *Server) placeNew(ctx context.Context, tx pgx.Tx) (ids.NodeID, error) {
	if s.p.Nodes == nil {
		return s.p.Node, nil
	}
	node, _, err := s.p.Nodes.Pick(ctx, tx)
	if errors.Is(err, nodes.ErrNoNode) {
		s.log.Warn("no live media node: visit created unplaced")
		return "", nil
	}
	return node, err
}

// markPlaced records when visit was placed on node, so that the placement
// counts as load until the node's heartbeats show the call.
func (s *Server) markPlaced(ctx context.Context, tx pgx.Tx, visit ids.VisitID, node ids.NodeID) error {
	if s.p.Nodes == nil || node == "" {
		return nil
	}
	return store.MarkPlaced(ctx, tx, visit)
}

// joinNode returns the node and WebSocket URL a participant joining visit
// must use (current is the node the visit names now), moving the visit off
// a dead or draining node within tx.
func (s *Server) joinNode(ctx context.Context, tx pgx.Tx, visit ids.VisitID, current ids.NodeID) (ids.NodeID, string, error) {
	if s.p.Nodes == nil {
		if current == "" {
			return "", "", errNoMediaNode
		}
		u, err := store.NodeURL(ctx, tx, current)
		return current, u, err
	}
	pl, err := s.p.Nodes.ForJoin(ctx, tx, visit)
	if errors.Is(err, nodes.ErrNoNode) {
		return "", "", errNoMediaNode
	}
	if err != nil {
		return "", "", err
	}
	if pl.Moved {
		s.log.Info("visit placed at join", "visit", string(visit), "from", string(pl.From), "to", string(pl.Node))
	}
	return pl.Node, pl.URL, nil
}
