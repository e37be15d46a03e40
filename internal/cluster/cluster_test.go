package cluster

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
)

// waitLive waits until the registry shows want live, non-draining nodes.
func (c *cluster) waitLive(want ...string) {
	c.t.Helper()
	waitFor(c.t, "media nodes "+strings.Join(want, ", ")+" live", 30*time.Second, func() bool {
		rows, err := c.pool.Query(context.Background(), `SELECT id FROM sfu_nodes
			WHERE NOT draining AND last_seen_at > now() - interval '2 seconds' ORDER BY id`)
		if err != nil {
			return false
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			got = append(got, id)
		}
		return strings.Join(got, ",") == strings.Join(want, ",")
	})
}

// TestMultiNodePlacement runs an api node and two media-only nodes as
// separate processes: visits spread over the nodes, by load, and a call
// placed on a node runs there with tokens verified by its public key alone.
func TestMultiNodePlacement(t *testing.T) {
	hostIP(t)
	c := newCluster(t)
	c.start("api", "api")
	m1 := c.start("m1", "media")
	c.start("m2", "media")
	c.waitLive("m1", "m2")
	prov, _ := c.provider()

	// Idle nodes: placements alternate (a recent placement counts as load).
	count := map[string]int{}
	var visits []ids.VisitID
	for range 6 {
		v := prov.newVisit()
		visits = append(visits, v)
		count[c.nodeOf(v)]++
	}
	if count["m1"] != 3 || count["m2"] != 3 {
		t.Fatalf("6 visits on idle nodes placed %v, want 3 on each", count)
	}

	// A call on one node: its grant names that node's URL; media flows.
	var v ids.VisitID
	for _, x := range visits {
		if c.nodeOf(x) == "m1" {
			v = x
			break
		}
	}
	g1 := prov.join(v)
	if g1.WSURL != strings.Replace(m1.url, "https://", "wss://", 1)+"/sfu/ws" {
		t.Fatalf("grant ws_url = %s, want m1's (%s)", g1.WSURL, m1.url)
	}
	pat := c.patient(v)
	g2 := pat.join(v)
	if g2.WSURL != g1.WSURL {
		t.Fatalf("patient sent to %s, provider to %s", g2.WSURL, g1.WSURL)
	}
	a, b := joinPeer(t, g1), joinPeer(t, g2)
	a.receiving(t, "provider receiving the patient's media on m1", 30*time.Second)
	b.receiving(t, "patient receiving the provider's media on m1", 30*time.Second)

	// Let the earlier placements age out; m1's heartbeat now shows the call,
	// so new visits go to m2 until it carries as much.
	if _, err := c.pool.Exec(context.Background(), `UPDATE visits SET placed_at = now() - interval '10 minutes'`); err != nil {
		t.Fatal(err)
	}
	c.waitRooms("m1", 1, 15*time.Second)
	var got []string
	for range 3 {
		got = append(got, c.nodeOf(prov.newVisit()))
	}
	if got[0] != "m2" || got[1] != "m2" || got[2] != "m1" {
		t.Errorf("with a call on m1, new visits went to %v, want m2, m2, then m1 (load 2 each, m2 fewer rooms)", got)
	}
}

// TestDrainKeepsCalls sends SIGTERM to a media node with a call: the node
// leaves placement, the call goes on until it ends, new visits go to the
// other node, and the node exits once the call has ended.
func TestDrainKeepsCalls(t *testing.T) {
	c, m1 := oneMediaNode(t, "OPENVISIT_CLUSTER_DRAIN_TIMEOUT=3m")
	prov, _ := c.provider()
	v := prov.newVisit()
	if n := c.nodeOf(v); n != "m1" {
		t.Fatalf("visit placed on %q, want m1 (the only node)", n)
	}
	a, b := joinPeer(t, prov.join(v)), joinPeer(t, c.patient(v).join(v))
	a.receiving(t, "provider receiving media", 30*time.Second)
	b.receiving(t, "patient receiving media", 30*time.Second)

	c.start("m2", "media")
	c.waitLive("m1", "m2")
	m1.signal(syscall.SIGTERM)
	c.waitLive("m2")

	for range 3 {
		if n := c.nodeOf(prov.newVisit()); n != "m2" {
			t.Fatalf("new visit placed on %q while m1 drains, want m2", n)
		}
	}
	// A participant coming back to the call in progress still lands on m1,
	// where its room is.
	if g := prov.join(v); !strings.Contains(g.WSURL, strings.TrimPrefix(m1.url, "https://")) {
		t.Errorf("rejoining the draining node's call sent to %s, want m1", g.WSURL)
	}
	// The call goes on through the drain.
	for range 3 {
		a.receiving(t, "provider receiving media while m1 drains", 15*time.Second)
		b.receiving(t, "patient receiving media while m1 drains", 15*time.Second)
		if a.dropped() || b.dropped() || m1.wait(time.Second) {
			t.Fatal("the draining node dropped the call")
		}
	}
	// The call ends; the node exits cleanly soon after.
	a.close()
	b.close()
	if !m1.wait(30 * time.Second) {
		t.Fatal("m1 did not exit after its last call ended")
	}
	if m1.err != nil {
		t.Errorf("m1 exited with %v", m1.err)
	}
	if !strings.Contains(m1.logs.String(), "drained: no calls left") {
		t.Errorf("m1's log does not say it drained")
	}
}

// TestNodeLossRejoin kills a media node mid-call (SIGKILL): both
// participants see their socket drop, ask the join endpoint again, and are
// back in the call on the other node, exchanging media, within 15 s.
// (TestE2ENodeLossReconnect does the same with browsers and the page's own
// reconnection.)
func TestNodeLossRejoin(t *testing.T) {
	c, m1 := oneMediaNode(t)
	prov, v, pat := c.visitWithPatient()
	a, b := joinPeer(t, prov.join(v)), joinPeer(t, pat.join(v))
	a.receiving(t, "provider receiving media on m1", 30*time.Second)
	b.receiving(t, "patient receiving media on m1", 30*time.Second)
	c.start("m2", "media")
	c.waitLive("m1", "m2")

	m1.signal(syscall.SIGKILL)
	killed := time.Now()
	waitFor(t, "both sockets to drop", 10*time.Second, func() bool { return a.dropped() && b.dropped() })
	a.close()
	b.close()
	a2, b2 := rejoin(t, prov, v, m1, killed), rejoin(t, pat, v, m1, killed)
	a2.receiving(t, "provider receiving media on m2", 15*time.Second-time.Since(killed))
	b2.receiving(t, "patient receiving media on m2", 15*time.Second-time.Since(killed))
	if n := c.nodeOf(v); n != "m2" {
		t.Errorf("visit on %q after the rejoin, want m2", n)
	}
	t.Logf("back in the call on m2 %v after m1 was killed", time.Since(killed).Round(100*time.Millisecond))
}

// rejoin asks the join endpoint for a grant until it names a node other
// than dead (the first answers may still name it until it is counted
// dead), and joins there.
func rejoin(t *testing.T, cl *client, v ids.VisitID, dead *proc, killed time.Time) peer {
	t.Helper()
	for {
		g := cl.join(v)
		if strings.Contains(g.WSURL, strings.TrimPrefix(dead.url, "https://")) {
			if time.Since(killed) > 15*time.Second {
				t.Fatal("the join endpoint still names the dead node after 15 s")
			}
			time.Sleep(500 * time.Millisecond)
			continue
		}
		return joinPeer(t, g)
	}
}
