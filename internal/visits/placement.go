package visits

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/nodes"
	"github.com/openvisit/openvisit/internal/store"
)

// ErrNoMediaNode: a join needs a media node and none is live.
var ErrNoMediaNode = errors.New("visits: no media node")

// Placement puts a visit's room on one media node. A new visit goes on the
// least-loaded live node (internal/nodes); a join finds the visit's node
// and, when that node has died or is draining without the visit's room,
// moves the visit to a live node first, so that participants whose socket
// dropped call join again and land together on the new node.
type Placement struct {
	// Nodes is the registry of media nodes; nil: every visit goes on Node,
	// the media node of this process.
	Nodes *nodes.Registry
	Node  ids.NodeID
	Log   *slog.Logger
}

// New returns the node a visit created now goes on. Without a live node
// the visit is created unplaced (""): scheduling does not depend on media,
// and the first join places it.
func (p Placement) New(ctx context.Context, tx pgx.Tx) (ids.NodeID, error) {
	if p.Nodes == nil {
		return p.Node, nil
	}
	node, _, err := p.Nodes.Pick(ctx, tx)
	if errors.Is(err, nodes.ErrNoNode) {
		p.log().Warn("no live media node: visit created unplaced")
		return "", nil
	}
	return node, err
}

// Placed records when visit was placed on node, so that the placement
// counts as load until the node's heartbeats show the call.
func (p Placement) Placed(ctx context.Context, tx pgx.Tx, visit ids.VisitID, node ids.NodeID) error {
	if p.Nodes == nil || node == "" {
		return nil
	}
	return store.MarkPlaced(ctx, tx, visit)
}

// ForJoin returns the node and WebSocket URL a participant joining visit
// must use (current is the node the visit names now), moving the visit off
// a dead or draining node within tx.
func (p Placement) ForJoin(ctx context.Context, tx pgx.Tx, visit ids.VisitID, current ids.NodeID) (ids.NodeID, string, error) {
	if p.Nodes == nil {
		if current == "" {
			return "", "", ErrNoMediaNode
		}
		u, err := store.NodeURL(ctx, tx, current)
		return current, u, err
	}
	pl, err := p.Nodes.ForJoin(ctx, tx, visit)
	if errors.Is(err, nodes.ErrNoNode) {
		return "", "", ErrNoMediaNode
	}
	if err != nil {
		return "", "", err
	}
	if pl.Moved {
		p.log().Info("visit placed at join", "visit", string(visit), "from", string(pl.From), "to", string(pl.Node))
	}
	return pl.Node, pl.URL, nil
}

func (p Placement) log() *slog.Logger {
	if p.Log == nil {
		return slog.Default()
	}
	return p.Log
}
