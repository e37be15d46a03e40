package cluster

import (
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/e2e"
	"github.com/openvisit/openvisit/signaling"
)

// peer is a Pion participant (e2e.Peer) with the default ICE settings:
// every interface but loopback, as separate media processes need.
type peer struct{ *e2e.Peer }

func joinPeer(t *testing.T, g signaling.JoinGrant) peer {
	t.Helper()
	return peer{e2e.JoinPeer(t, g, e2e.PeerOptions{})}
}

// receiving waits until the peer's received count grows.
func (p peer) receiving(t *testing.T, what string, timeout time.Duration) {
	t.Helper()
	start := p.Received()
	waitFor(t, what, timeout, func() bool { return p.Received() > start+20 })
}

func (p peer) dropped() bool { return p.Dropped() }

// Closed is closed when the server closed the socket.
func (p peer) Closed() <-chan struct{} { return p.Peer.Closed() }

func (p peer) close() { p.Close() }
