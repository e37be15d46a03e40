package app

import (
	"context"
	"errors"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/nodes"
)

// startHeartbeat registers this media node in the node registry with its
// public WebSocket URL and heartbeats its load (rooms, participants) until
// the App closes.
func (a *App) startHeartbeat(ctx context.Context, reg *nodes.Registry, node ids.NodeID) error {
	media := a.media
	beat, err := nodes.Start(ctx, nodes.HeartbeatParams{
		Registry: reg, Node: node, URL: a.cfg.NodeURL(), RelayURLs: a.relayURLs(), Interval: a.cfg.Cluster.HeartbeatInterval, Logger: a.log,
		Load: func() nodes.Load {
			st := media.Stats()
			return nodes.Load{Rooms: st.Rooms, Participants: st.Participants}
		},
	})
	if err != nil {
		return err
	}
	a.beat = beat
	return nil
}

// ErrNoMedia is returned by Drain in a process without the media role.
var ErrNoMedia = errors.New("app: this process runs no media node")

// Drain takes this media node out of placement (draining in the registry)
// and waits until its calls have ended or ctx ends; requests keep being
// served meanwhile, so participants of calls in progress can still rejoin.
// Shutdown follows.
func (a *App) Drain(ctx context.Context) error {
	if a.beat == nil {
		return ErrNoMedia
	}
	return a.beat.Drain(ctx, 500*time.Millisecond)
}
