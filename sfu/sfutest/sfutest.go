// Package sfutest runs a real media node in-process for the tests of the
// SFU's clients (sfu/client, the load generator): an SFU behind an httptest
// server on loopback, with a minter for its token key.
package sfutest

import (
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu"
)

// NodeID is the test node's ID, which its tokens name.
const NodeID = ids.NodeID("node-test")

// Loopback makes Pion use loopback candidates only, without mDNS.
func Loopback(se *webrtc.SettingEngine) {
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
}

// Node is a media node for one test; it closes when the test ends.
type Node struct {
	URL    string // its WebSocket URL (ws://127.0.0.1:port)
	SFU    *sfu.SFU
	minter *token.Minter
}

// NewNode starts a node on loopback.
func NewNode(t testing.TB) *Node {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(pub, NodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := token.NewMinter(priv, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sfu.New(sfu.Params{
		Node: NodeID, Verifier: v, Burner: token.NewMemoryBurner(1000, nil),
		Logger: slog.New(slog.DiscardHandler), UDPAddr: "127.0.0.1:0", ConfigureWebRTC: Loopback,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { _ = s.Close(); srv.Close() })
	return &Node{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), SFU: s, minter: m}
}

// Mint returns a join token for a new participant of visit on this node.
func (n *Node) Mint(visit ids.VisitID, role token.Role) (string, error) {
	tok, _, err := n.minter.Mint(token.Grant{
		Visit: visit, Participant: ids.NewParticipantID(), Role: role, Subject: "user-1", Node: NodeID,
	})
	return tok, err
}
