package nodes

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
)

// HeartbeatParams configures a media node's Heartbeat.
type HeartbeatParams struct {
	Registry *Registry
	Node     ids.NodeID
	URL      string // the node's public wss:// URL for /sfu/ws
	// RelayURLs are the node's TURN relay URLs (sfu/turn), none without one.
	RelayURLs []string
	Interval  time.Duration
	// Load reads the node's load (sfu.Stats).
	Load   func() Load
	Logger *slog.Logger
}

// Heartbeat keeps one media node registered. Lifecycle: Start registers the
// node and starts the loop; Drain may follow; Stop ends the loop (and takes
// the node out of placement) and waits for it. Stop is idempotent.
type Heartbeat struct {
	p    HeartbeatParams
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
	once sync.Once
	// wake asks the loop for a heartbeat now (after a drain starts).
	wake chan struct{}
}

// Start registers the node (an error here fails the process's start) and
// heartbeats every Interval until Stop.
func Start(ctx context.Context, p HeartbeatParams) (*Heartbeat, error) {
	if p.Registry == nil || p.Node == "" || p.URL == "" || p.Interval <= 0 || p.Load == nil {
		return nil, errors.New("nodes: Registry, Node, URL, Interval and Load are required")
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	h := &Heartbeat{p: p, log: p.Logger.With("component", "nodes", "node", string(p.Node)),
		stop: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	if err := p.Registry.Register(ctx, p.Node, p.URL, p.RelayURLs); err != nil {
		return nil, err
	}
	go h.loop()
	return h, nil
}

func (h *Heartbeat) loop() {
	defer close(h.done)
	t := time.NewTicker(h.p.Interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		case <-h.wake:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(h.p.Interval, time.Second))
		err := h.p.Registry.Heartbeat(ctx, h.p.Node, h.p.Load())
		if errors.Is(err, errUnregistered) {
			// Someone removed the row (an operator's cleanup): come back.
			err = h.p.Registry.Register(ctx, h.p.Node, h.p.URL, h.p.RelayURLs)
		}
		cancel()
		switch {
		case err != nil && !failing:
			h.log.Warn("heartbeat failed: the control plane will count this node dead if it goes on", "err", err)
			failing = true
		case err == nil && failing:
			h.log.Info("heartbeat restored")
			failing = false
		}
	}
}

// Drain takes the node out of placement for new visits and waits until it
// hosts no room (every call ended) or ctx ends. Calls in progress go on;
// participants rejoining them still land here.
func (h *Heartbeat) Drain(ctx context.Context, poll time.Duration) error {
	if err := h.p.Registry.SetDraining(ctx, h.p.Node, true); err != nil {
		return err
	}
	l := h.p.Load()
	h.log.Info("draining: no new visits; waiting for calls to end", "rooms", l.Rooms, "participants", l.Participants)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		l = h.p.Load()
		if l.Rooms == 0 {
			select { // report the empty node at once
			case h.wake <- struct{}{}:
			default:
			}
			h.log.Info("drained: no calls left")
			return nil
		}
		select {
		case <-ctx.Done():
			h.log.Warn("drain ended before every call did", "rooms", l.Rooms, "participants", l.Participants)
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Stop ends the heartbeats and marks the node draining, so that placement
// skips it at once instead of after DeadAfter.
func (h *Heartbeat) Stop() {
	h.once.Do(func() {
		close(h.stop)
		<-h.done
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := h.p.Registry.SetDraining(ctx, h.p.Node, true); err != nil {
			h.log.Warn("could not mark the node draining on stop", "err", err)
		}
	})
}

// RoomBurner wraps a token burner so that each participant node admits
// records its room (Registry.RoomJoined): a draining node keeps those
// visits. A failure to record is logged, never refused: the token was good.
func RoomBurner(b token.Burner, reg *Registry, node ids.NodeID, log *slog.Logger) token.Burner {
	if log == nil {
		log = slog.Default()
	}
	return roomBurner{Burner: b, reg: reg, node: node, log: log}
}

type roomBurner struct {
	token.Burner
	reg  *Registry
	node ids.NodeID
	log  *slog.Logger
}

func (b roomBurner) Burn(ctx context.Context, c token.Claims) error {
	if err := b.Burner.Burn(ctx, c); err != nil {
		return err
	}
	if err := b.reg.RoomJoined(ctx, b.node, c.Visit); err != nil {
		b.log.Warn("could not record the room", "node", string(b.node), "visit", string(c.Visit), "err", err)
	}
	return nil
}
