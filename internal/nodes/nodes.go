// Package nodes is the media node registry in PostgreSQL. Media nodes
// register, heartbeat their load and announce draining; the control plane
// places each visit on the least-loaded live node and moves a visit whose
// node died (or is draining without the visit's room) when someone joins.
//
// Liveness uses PostgreSQL's clock on both sides (heartbeats write now(),
// placement compares with now()), so clock skew between machines does not
// matter.
package nodes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/ids"
)

// ErrNoNode means no live, non-draining media node can take a visit.
var ErrNoNode = errors.New("nodes: no live media node")

// RecentPlacement is how long a placement counts as load on its node: long
// enough for the node's heartbeats to show the call once it starts.
const RecentPlacement = time.Minute

// placementWeight is what one recent placement adds to a node's load: a
// visit usually brings two participants.
const placementWeight = 2

// DBTX is a pool or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Load is what a media node reports in each heartbeat.
type Load struct {
	Rooms, Participants int
}

// Node is one registered media node as the control plane sees it.
type Node struct {
	ID       ids.NodeID
	URL      string // wss://…/sfu/ws
	Load     Load
	Draining bool
	Live     bool // heartbeat within DeadAfter
	LastSeen time.Time
}

// Registry reads and writes sfu_nodes. It holds no state of its own and is
// safe for concurrent use; it needs no Close.
type Registry struct {
	pool      *pgxpool.Pool
	deadAfter time.Duration
}

// NewRegistry returns a registry that counts a node silent for deadAfter
// as dead.
func NewRegistry(pool *pgxpool.Pool, deadAfter time.Duration) *Registry {
	return &Registry{pool: pool, deadAfter: deadAfter}
}

// DeadAfter is how long a silent node stays live.
func (r *Registry) DeadAfter() time.Duration { return r.deadAfter }

// Register records node (a process starting): its URL and its TURN relay's
// URLs (none without one), no load, not draining, seen now. Rooms
// remembered from a previous process are dropped.
func (r *Registry) Register(ctx context.Context, node ids.NodeID, url string, relayURLs []string) error {
	if relayURLs == nil {
		relayURLs = []string{}
	}
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sfu_nodes (id, url, relay_urls, load, rooms, draining, last_seen_at, started_at)
			VALUES ($1, $2, $3, 0, 0, false, now(), now())
			ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, relay_urls = EXCLUDED.relay_urls, load = 0, rooms = 0,
				draining = false, last_seen_at = now(), started_at = now()`, string(node), url, relayURLs); err != nil {
			return fmt.Errorf("nodes: register %s: %w", node, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sfu_rooms WHERE node_id = $1`, string(node)); err != nil {
			return fmt.Errorf("nodes: register %s: %w", node, err)
		}
		return nil
	})
}

// Heartbeat writes node's load and marks it seen. A node that reports no
// rooms forgets the rooms it had admitted participants to.
func (r *Registry) Heartbeat(ctx context.Context, node ids.NodeID, l Load) error {
	tag, err := r.pool.Exec(ctx, `UPDATE sfu_nodes SET load = $2, rooms = $3, last_seen_at = now() WHERE id = $1`,
		string(node), max(l.Participants, 0), max(l.Rooms, 0))
	if err != nil {
		return fmt.Errorf("nodes: heartbeat %s: %w", node, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("nodes: heartbeat %s: %w", node, errUnregistered)
	}
	if l.Rooms == 0 {
		// Rows younger than roomGrace may belong to a join whose room the
		// reported load did not include yet.
		if _, err := r.pool.Exec(ctx, `DELETE FROM sfu_rooms WHERE node_id = $1 AND joined_at < now() - $2::interval`,
			string(node), roomGrace); err != nil {
			return fmt.Errorf("nodes: heartbeat %s: %w", node, err)
		}
	}
	return nil
}

// roomGrace: an empty heartbeat keeps room records this young.
const roomGrace = 30 * time.Second

var errUnregistered = errors.New("node is not registered")

// SetDraining marks node as draining (no new visits) or not.
func (r *Registry) SetDraining(ctx context.Context, node ids.NodeID, draining bool) error {
	if _, err := r.pool.Exec(ctx, `UPDATE sfu_nodes SET draining = $2 WHERE id = $1`, string(node), draining); err != nil {
		return fmt.Errorf("nodes: set draining %s: %w", node, err)
	}
	return nil
}

// RoomJoined records that node admitted a participant to visit's room, so
// that while draining it keeps that visit. Visits unknown to the database
// are ignored.
func (r *Registry) RoomJoined(ctx context.Context, node ids.NodeID, visit ids.VisitID) error {
	if !ids.Valid(string(visit)) {
		return nil
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO sfu_rooms (node_id, visit_id, joined_at)
		SELECT $1, id, now() FROM visits WHERE id = $2
		ON CONFLICT (node_id, visit_id) DO UPDATE SET joined_at = now()`, string(node), string(visit))
	if err != nil {
		return fmt.Errorf("nodes: room joined: %w", err)
	}
	return nil
}

// List returns every registered node, live or not, by ID.
func (r *Registry) List(ctx context.Context) ([]Node, error) {
	rows, err := r.pool.Query(ctx, `SELECT id, url, rooms, load, draining, last_seen_at > now() - $1::interval, last_seen_at
		FROM sfu_nodes ORDER BY id`, r.deadAfter)
	if err != nil {
		return nil, fmt.Errorf("nodes: list: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Node, error) {
		var n Node
		var id string
		err := row.Scan(&id, &n.URL, &n.Load.Rooms, &n.Load.Participants, &n.Draining, &n.Live, &n.LastSeen)
		n.ID = ids.NodeID(id)
		return n, err
	})
}

// pick chooses the least-loaded live node that is not draining and has
// room under its capacity (0: unbounded). Load is the participants of the
// last heartbeat plus recent placements it may not show yet; ties go to
// fewer rooms, then at random so that several API nodes do not herd.
const pick = `SELECT n.id, n.url FROM sfu_nodes n
	WHERE NOT n.draining AND n.last_seen_at > now() - $1::interval
	  AND (n.capacity = 0 OR n.load < n.capacity)
	ORDER BY n.load + $3 * (SELECT count(*) FROM visits v
	           WHERE v.sfu_node_id = n.id AND v.placed_at > now() - $2::interval),
	         n.rooms, random()
	LIMIT 1`

// Pick returns the node a new visit should go on, without recording
// anything (Place records the placement).
func (r *Registry) Pick(ctx context.Context, db DBTX) (ids.NodeID, string, error) {
	var id, url string
	err := db.QueryRow(ctx, pick, r.deadAfter, RecentPlacement, placementWeight).Scan(&id, &url)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrNoNode
	}
	if err != nil {
		return "", "", fmt.Errorf("nodes: pick: %w", err)
	}
	return ids.NodeID(id), url, nil
}

// Place puts visit on the least-loaded live node and returns it. It runs
// in db (the caller's transaction, which inserted or locked the visit).
func (r *Registry) Place(ctx context.Context, db DBTX, visit ids.VisitID) (ids.NodeID, string, error) {
	node, url, err := r.Pick(ctx, db)
	if err != nil {
		return "", "", err
	}
	if _, err := db.Exec(ctx, `UPDATE visits SET sfu_node_id = $2, placed_at = now() WHERE id = $1`,
		string(visit), string(node)); err != nil {
		return "", "", fmt.Errorf("nodes: place: %w", err)
	}
	return node, url, nil
}

// Placement is where a join must go.
type Placement struct {
	Node ids.NodeID
	URL  string
	// Moved is set when the visit was (re)placed by this join; From is the
	// node it left ("" when it had none).
	Moved bool
	From  ids.NodeID
}

// ForJoin returns the node a participant joining visit must use. A visit
// stays on its node while the node is live and either hosts the visit's
// room or took the visit recently and is not draining. Otherwise (its node
// died, is draining without the room, or the visit was placed long ago and
// its call has not started) it goes on the least-loaded live node now: a
// scheduled visit lands where there is room when its call begins, and a
// call whose node died continues elsewhere. ForJoin locks the visit row in
// tx, so that participants rejoining at once land on the same node.
// ErrNoNode means the visit needs a node and none is live.
func (r *Registry) ForJoin(ctx context.Context, tx pgx.Tx, visit ids.VisitID) (Placement, error) {
	var node, url string
	var live, draining, hasRoom, recent bool
	// Lock the visit in a statement of its own: a rejoin that waited here for
	// another to move the visit must then read the new placement. (A
	// FOR UPDATE joined with sfu_nodes would re-check only the visit row
	// after the wait and keep the old node's row from its earlier snapshot,
	// placing the visit a second time.)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM visits WHERE id = $1 FOR UPDATE`, string(visit)); err != nil {
		return Placement{}, fmt.Errorf("nodes: for join: %w", err)
	}
	err := tx.QueryRow(ctx, `SELECT COALESCE(v.sfu_node_id, ''), COALESCE(n.url, ''),
			COALESCE(n.last_seen_at > now() - $2::interval, false), COALESCE(n.draining, false),
			EXISTS (SELECT 1 FROM sfu_rooms s WHERE s.node_id = v.sfu_node_id AND s.visit_id = v.id),
			COALESCE(v.placed_at > now() - $3::interval, false)
		FROM visits v LEFT JOIN sfu_nodes n ON n.id = v.sfu_node_id
		WHERE v.id = $1`, string(visit), r.deadAfter, RecentPlacement).
		Scan(&node, &url, &live, &draining, &hasRoom, &recent)
	if err != nil {
		return Placement{}, fmt.Errorf("nodes: for join: %w", err)
	}
	if live && (hasRoom || (recent && !draining)) {
		return Placement{Node: ids.NodeID(node), URL: url}, nil
	}
	to, toURL, err := r.Place(ctx, tx, visit)
	if err != nil {
		return Placement{}, err
	}
	return Placement{Node: to, URL: toURL, Moved: true, From: ids.NodeID(node)}, nil
}
