package app_test

import (
	"net"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/sfu/turn"
)

// A join grant carries relay credentials limited to the visit, and they
// authenticate with the embedded TURN server (a forged one does not).
func TestJoinGrantCarriesTURN(t *testing.T) {
	s := startServerWith(t, func(c *config.Config) {
		c.Media.TURN.Addr = "127.0.0.1:0"
		c.Media.TURN.AllowPrivatePeers = true
	})
	g, _ := s.providerJoin(t)
	if len(g.ICEServers) != 1 || len(g.ICEServers[0].URLs) != 1 || !strings.HasPrefix(g.ICEServers[0].URLs[0], "turn:127.0.0.1:") {
		t.Fatalf("ice_servers = %+v, want the embedded relay", g.ICEServers)
	}
	ice := g.ICEServers[0]
	expiry, participant, ok := strings.Cut(ice.Username, ":")
	if !ok || participant != string(g.ParticipantID) || expiry == "" {
		t.Fatalf("relay username %q, want <expiry>:<participant>", ice.Username)
	}

	addr := strings.TrimSuffix(strings.TrimPrefix(ice.URLs[0], "turn:"), "?transport=udp")
	allocate := func(user, pass string) error {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cl, err := pionturn.NewClient(&pionturn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: user, Password: pass,
			Realm: turn.Realm, Conn: conn, RTO: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.Listen(); err != nil {
			t.Fatal(err)
		}
		relay, err := cl.Allocate()
		if err == nil {
			relay.Close()
		}
		return err
	}
	if err := allocate(ice.Username, ice.Credential); err != nil {
		t.Fatalf("allocation with the grant's credentials: %v", err)
	}
	if err := allocate(ice.Username, "forged"+ice.Credential); err == nil {
		t.Fatal("a forged password allocated a relay")
	}
	// Credentials name their expiry: one already past is refused.
	past := strings.Replace(ice.Username, expiry, "1000000000", 1)
	if err := allocate(past, ice.Credential); err == nil {
		t.Fatal("an expired username allocated a relay")
	}
}
