package nodes_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/nodes"
	"github.com/openvisit/openvisit/internal/token"
)

func setup(t *testing.T) (*pgxpool.Pool, *nodes.Registry) {
	t.Helper()
	pool := dbtest.Pool(t, 4)
	return pool, nodes.NewRegistry(pool, 10*time.Second)
}

func newVisit(t *testing.T, pool *pgxpool.Pool, node ids.NodeID, placedAgo time.Duration) ids.VisitID {
	t.Helper()
	v := ids.NewVisitID()
	if _, err := pool.Exec(context.Background(), `INSERT INTO visits (id, sfu_node_id, placed_at)
		VALUES ($1, NULLIF($2, ''), now() - $3::interval)`, string(v), string(node), placedAgo); err != nil {
		t.Fatal(err)
	}
	return v
}

// age makes node look silent for d.
func age(t *testing.T, pool *pgxpool.Pool, node ids.NodeID, d time.Duration) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `UPDATE sfu_nodes SET last_seen_at = now() - $2::interval WHERE id = $1`,
		string(node), d); err != nil {
		t.Fatal(err)
	}
}

func forJoin(t *testing.T, pool *pgxpool.Pool, reg *nodes.Registry, v ids.VisitID) (nodes.Placement, error) {
	t.Helper()
	var pl nodes.Placement
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		pl, err = reg.ForJoin(context.Background(), tx, v)
		return err
	})
	return pl, err
}

func TestPlacementByLoad(t *testing.T) {
	pool, reg := setup(t)
	ctx := context.Background()
	for _, n := range []ids.NodeID{"a", "b", "c"} {
		if err := reg.Register(ctx, n, "wss://"+string(n)+".test/sfu/ws", nil); err != nil {
			t.Fatal(err)
		}
	}
	_ = reg.Heartbeat(ctx, "a", nodes.Load{Rooms: 3, Participants: 6})
	_ = reg.Heartbeat(ctx, "b", nodes.Load{Rooms: 1, Participants: 2})
	_ = reg.Heartbeat(ctx, "c", nodes.Load{Rooms: 0, Participants: 0})

	// Six visits in a row: recent placements count as load, so c takes
	// the first ones, then b joins in, and a (the busiest) last.
	got := map[ids.NodeID]int{}
	for range 6 {
		v := newVisit(t, pool, "", 0)
		var node ids.NodeID
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var err error
			node, _, err = reg.Place(ctx, tx, v)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got[node]++
	}
	// Loads: a 6, b 2, c 0; each placement adds 2. Six placements end at
	// a 6 (+0), b 2+2·2 = 6, c 0+2·4 = 8 or thereabouts; a must get the fewest.
	if got["a"] > 1 || got["c"] < got["b"] || got["c"]+got["b"]+got["a"] != 6 {
		t.Errorf("placements by node = %v, want c ≥ b > a", got)
	}

	// Dead and draining nodes get nothing.
	age(t, pool, "c", time.Minute)
	if err := reg.SetDraining(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		node, _, err := reg.Pick(ctx, pool)
		if err != nil || node != "a" {
			t.Fatalf("Pick = %q, %v; want a (b draining, c dead)", node, err)
		}
	}
	age(t, pool, "a", time.Minute)
	if _, _, err := reg.Pick(ctx, pool); !errors.Is(err, nodes.ErrNoNode) {
		t.Fatalf("Pick with no live node: %v, want ErrNoNode", err)
	}
	list, err := reg.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("List = %v, %v", list, err)
	}
	for _, n := range list {
		if wantLive := n.ID == "b"; n.Live != wantLive || n.Draining != wantLive {
			t.Errorf("node %s: live %v draining %v; want only b live and draining", n.ID, n.Live, n.Draining)
		}
	}
}

func TestForJoin(t *testing.T) {
	pool, reg := setup(t)
	ctx := context.Background()
	for _, n := range []ids.NodeID{"a", "b"} {
		if err := reg.Register(ctx, n, "wss://"+string(n)+".test/sfu/ws", nil); err != nil {
			t.Fatal(err)
		}
	}
	// b is busy, so moves go to a unless a is the one that failed.
	_ = reg.Heartbeat(ctx, "b", nodes.Load{Rooms: 5, Participants: 10})

	tests := []struct {
		name      string
		node      ids.NodeID
		placedAgo time.Duration
		room      bool
		setup     func()
		want      ids.NodeID
		moved     bool
	}{
		{name: "recent placement stays", node: "b", want: "b"},
		{name: "unplaced visit is placed", node: "", want: "a", moved: true},
		{name: "old placement without a call moves to the least loaded", node: "b", placedAgo: 2 * time.Minute, want: "a", moved: true},
		{name: "old placement with a live room stays", node: "b", placedAgo: 2 * time.Minute, room: true, want: "b"},
		{name: "draining node keeps its room", node: "b", room: true,
			setup: func() { _ = reg.SetDraining(ctx, "b", true) }, want: "b"},
		{name: "draining node gives up a visit without a room", node: "b",
			setup: func() { _ = reg.SetDraining(ctx, "b", true) }, want: "a", moved: true},
		{name: "dead node loses its room", node: "a", room: true,
			setup: func() { _ = reg.SetDraining(ctx, "b", false); age(t, pool, "a", time.Minute) }, want: "b", moved: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_ = reg.Heartbeat(ctx, "a", nodes.Load{Rooms: 1, Participants: 1})
			_ = reg.SetDraining(ctx, "b", false)
			if tc.setup != nil {
				tc.setup()
			}
			v := newVisit(t, pool, tc.node, tc.placedAgo)
			if tc.room {
				if err := reg.RoomJoined(ctx, tc.node, v); err != nil {
					t.Fatal(err)
				}
			}
			pl, err := forJoin(t, pool, reg, v)
			if err != nil {
				t.Fatal(err)
			}
			if pl.Node != tc.want || pl.Moved != tc.moved || pl.URL != "wss://"+string(tc.want)+".test/sfu/ws" {
				t.Errorf("ForJoin = %+v, want node %s moved %v", pl, tc.want, tc.moved)
			}
			var stored string
			_ = pool.QueryRow(ctx, `SELECT sfu_node_id FROM visits WHERE id = $1`, string(v)).Scan(&stored)
			if stored != string(tc.want) {
				t.Errorf("visit stored on %q, want %q", stored, tc.want)
			}
		})
	}

	t.Run("no live node", func(t *testing.T) {
		age(t, pool, "a", time.Minute)
		age(t, pool, "b", time.Minute)
		v := newVisit(t, pool, "a", 0)
		if _, err := forJoin(t, pool, reg, v); !errors.Is(err, nodes.ErrNoNode) {
			t.Fatalf("ForJoin = %v, want ErrNoNode", err)
		}
	})
}

// Participants rejoining at once after their node died all land on the
// same new node.
func TestForJoinConcurrentRejoin(t *testing.T) {
	pool, reg := setup(t)
	ctx := context.Background()
	for _, n := range []ids.NodeID{"a", "b", "c"} {
		if err := reg.Register(ctx, n, "wss://"+string(n)+".test/sfu/ws", nil); err != nil {
			t.Fatal(err)
		}
	}
	v := newVisit(t, pool, "a", 0)
	_ = reg.RoomJoined(ctx, "a", v)
	age(t, pool, "a", time.Minute)
	var wg sync.WaitGroup
	got := make([]ids.NodeID, 6)
	for i := range got {
		wg.Go(func() {
			pl, err := forJoin(t, pool, reg, v)
			if err != nil {
				t.Error(err)
			}
			got[i] = pl.Node
		})
	}
	wg.Wait()
	for _, n := range got {
		if n != got[0] || n == "a" {
			t.Fatalf("rejoins landed on %v, want one live node", got)
		}
	}
}

func TestHeartbeatDrainAndRooms(t *testing.T) {
	n := startHeartbeat(t)
	defer n.h.Stop()
	n.waitLoad(nodes.Load{Rooms: 1, Participants: 2})
	n.checkBurnerRecordsRoom()
	n.checkDrainWaitsForRooms()
	n.checkEmptyRoomsCleared()

	// Drain with a deadline gives up.
	n.setLoad(nodes.Load{Rooms: 1})
	dctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := n.h.Drain(dctx, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain past its deadline: %v", err)
	}
	n.checkStopAndReregister()
}

// heartbeatNode is node m1 heartbeating every 50 ms with a load the test
// sets.
type heartbeatNode struct {
	t    *testing.T
	pool *pgxpool.Pool
	reg  *nodes.Registry
	h    *nodes.Heartbeat
	mu   sync.Mutex
	load nodes.Load
}

func startHeartbeat(t *testing.T) *heartbeatNode {
	t.Helper()
	pool, reg := setup(t)
	n := &heartbeatNode{t: t, pool: pool, reg: reg, load: nodes.Load{Rooms: 1, Participants: 2}}
	h, err := nodes.Start(context.Background(), nodes.HeartbeatParams{Registry: reg, Node: "m1", URL: "wss://m1.test/sfu/ws",
		Interval: 50 * time.Millisecond, Load: func() nodes.Load { n.mu.Lock(); defer n.mu.Unlock(); return n.load }})
	if err != nil {
		t.Fatal(err)
	}
	n.h = h
	return n
}

// setLoad sets the load the next heartbeats report.
func (n *heartbeatNode) setLoad(l nodes.Load) {
	n.mu.Lock()
	n.load = l
	n.mu.Unlock()
}

// waitLoad waits until the registry shows the node live with load want.
func (n *heartbeatNode) waitLoad(want nodes.Load) {
	t := n.t
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := n.reg.List(context.Background())
		if err == nil && len(list) == 1 && list[0].Load == want && list[0].Live {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry shows %+v (%v), want load %+v", list, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rooms counts the node's room records.
func (n *heartbeatNode) rooms() (c int) {
	_ = n.pool.QueryRow(context.Background(), `SELECT count(*) FROM sfu_rooms WHERE node_id = 'm1'`).Scan(&c)
	return c
}

// checkBurnerRecordsRoom: the burner records rooms; a room record survives
// heartbeats while the node has rooms.
func (n *heartbeatNode) checkBurnerRecordsRoom() {
	t, ctx := n.t, context.Background()
	t.Helper()
	v := newVisit(t, n.pool, "m1", 0)
	burner := nodes.RoomBurner(token.NewMemoryBurner(10, nil), n.reg, "m1", nil)
	if err := burner.Burn(ctx, token.Claims{ID: "j1", Visit: v, ExpiresAt: time.Now().Add(time.Minute).Unix()}); err != nil {
		t.Fatal(err)
	}
	if err := burner.Burn(ctx, token.Claims{ID: "j1", Visit: v}); !errors.Is(err, token.ErrUsed) {
		t.Fatalf("second burn: %v, want ErrUsed", err)
	}
	if n.rooms() != 1 {
		t.Fatalf("sfu_rooms rows = %d, want 1", n.rooms())
	}
}

// checkDrainWaitsForRooms: Drain waits for the rooms to empty, and the
// draining node is out of placement.
func (n *heartbeatNode) checkDrainWaitsForRooms() {
	t, ctx := n.t, context.Background()
	t.Helper()
	drained := make(chan error, 1)
	go func() { drained <- n.h.Drain(ctx, 20*time.Millisecond) }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a room open", err)
	default:
	}
	if _, _, err := n.reg.Pick(ctx, n.pool); !errors.Is(err, nodes.ErrNoNode) {
		t.Fatalf("Pick while draining: %v, want ErrNoNode", err)
	}
	n.setLoad(nodes.Load{})
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after the rooms emptied")
	}
	n.waitLoad(nodes.Load{})
}

// checkEmptyRoomsCleared: the fresh room record is kept through the grace
// period; an old one of an empty node is cleared.
func (n *heartbeatNode) checkEmptyRoomsCleared() {
	t := n.t
	t.Helper()
	if n.rooms() != 1 {
		t.Fatalf("sfu_rooms rows = %d right after an empty heartbeat, want 1 (grace)", n.rooms())
	}
	_, _ = n.pool.Exec(context.Background(), `UPDATE sfu_rooms SET joined_at = now() - interval '1 minute'`)
	deadline := time.Now().Add(5 * time.Second)
	for n.rooms() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("an empty node's old room records were not cleared")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkStopAndReregister: Stop takes the node out of placement at once; a
// new process registering clears draining.
func (n *heartbeatNode) checkStopAndReregister() {
	t, ctx := n.t, context.Background()
	t.Helper()
	n.h.Stop()
	n.h.Stop()
	list, _ := n.reg.List(ctx)
	if !list[0].Draining {
		t.Error("a stopped node is not marked draining")
	}
	if err := n.reg.Register(ctx, "m1", "wss://m1.test/sfu/ws", nil); err != nil {
		t.Fatal(err)
	}
	if m, _, err := n.reg.Pick(ctx, n.pool); err != nil || m != "m1" {
		t.Fatalf("Pick after re-register = %q, %v", m, err)
	}
}
