package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/openvisit/openvisit/sfu/turn"
)

// TestRelayOfSeparateMediaNode: on a cluster, the control plane hands out
// the TURN relay of the media node a visit is placed on — the node
// registered its relay's URLs (UDP, TCP and TLS), the control plane mints
// credentials from the secret they share — and those credentials allocate
// a relay on that node over TCP, as a browser behind a UDP-blocking
// firewall would.
func TestRelayOfSeparateMediaNode(t *testing.T) {
	ip := hostIP(t)
	c := newCluster(t)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	secretFile := filepath.Join(c.dir, "turn-secret.key")
	if err := os.WriteFile(secretFile, []byte(base64.StdEncoding.EncodeToString(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start("api", "api", "OPENVISIT_MEDIA_TURN_SECRET_FILE="+secretFile)
	c.start("m1", "media", "OPENVISIT_MEDIA_TURN_SECRET_FILE="+secretFile,
		"OPENVISIT_MEDIA_TURN_ADDR=0.0.0.0:0", "OPENVISIT_MEDIA_TURN_TCP_ADDR=0.0.0.0:0",
		"OPENVISIT_MEDIA_TURN_TLS_ADDR=0.0.0.0:0", "OPENVISIT_MEDIA_TURN_PUBLIC_IP="+ip)
	c.waitLive("m1")
	prov, _ := c.provider()
	g := prov.join(prov.newVisit())
	if len(g.ICEServers) != 1 {
		t.Fatalf("grant ice_servers = %+v, want m1's relay", g.ICEServers)
	}
	ice := g.ICEServers[0]
	kinds := []string{"turn:127.0.0.1:", "?transport=udp", "turn:127.0.0.1:", "?transport=tcp", "turns:127.0.0.1:", "?transport=tcp"}
	if len(ice.URLs) != 3 {
		t.Fatalf("relay URLs %q, want UDP, TCP and TLS on m1's host", ice.URLs)
	}
	for i, u := range ice.URLs {
		if !strings.HasPrefix(u, kinds[2*i]) || !strings.HasSuffix(u, kinds[2*i+1]) {
			t.Fatalf("relay URL %d is %q, want %s…%s", i, u, kinds[2*i], kinds[2*i+1])
		}
	}
	if _, participant, _ := strings.Cut(ice.Username, ":"); participant != string(g.ParticipantID) {
		t.Fatalf("relay username %q does not name the participant", ice.Username)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(ice.URLs[1], "turn:"), "?transport=tcp")
	if err := allocateOverTCP(addr, ice.Username, ice.Credential); err != nil {
		t.Fatalf("allocation over TCP with the grant's credentials: %v", err)
	}
	if err := allocateOverTCP(addr, ice.Username, "forged"+ice.Credential); err == nil {
		t.Fatal("a forged password allocated a relay")
	}
}

// allocateOverTCP allocates a relay at addr over TURN/TCP.
func allocateOverTCP(addr, user, pass string) error {
	conn, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	cl, err := pionturn.NewClient(&pionturn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: user,
		Password: pass, Realm: turn.Realm, Conn: pionturn.NewSTUNConn(conn)})
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Listen(); err != nil {
		return err
	}
	relay, err := cl.Allocate()
	if err == nil {
		relay.Close()
	}
	return err
}
