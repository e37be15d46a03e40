package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/openvisit/openvisit/internal/e2e"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/signaling"
)

// inCallWith is true when the page's current peer connection decodes video
// and hears audio from participant id (the same proof as the single-node
// call test, read from the client's current peer connection, so after a
// rejoin it speaks of the new node).
func inCallWith(id string) string {
	return fmt.Sprintf(`(async () => {
  const c = window.openvisit && window.openvisit.client;
  const tile = document.querySelector('[data-participant=%q]');
  if (!c || !c.pc || c.state !== 'connected' || !tile) return false;
  const v = tile.querySelector('video'), a = tile.querySelector('audio');
  if (!v || !a || a.muted || a.paused || !a.srcObject || v.videoWidth === 0) return false;
  let video = false, audio = false;
  (await c.pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video' && s.framesDecoded > 0 && s.frameWidth > 0) video = true;
    if (s.kind === 'audio' && s.totalAudioEnergy > 0) audio = true;
  });
  return video && audio;
})()`, id)
}

// pageSummary describes a call page for failure logs.
const pageSummary = `(async () => {
  const c = window.openvisit && window.openvisit.client;
  const e = document.querySelector('[role=alert]');
  const out = {state: document.body.dataset.state, error: e ? e.textContent : '', client: c ? c.state : null,
    reconnects: c ? c.reconnects : null, pc: c && c.pc ? c.pc.connectionState : null,
    tiles: [...document.querySelectorAll('[data-participant]')].map((t) => t.dataset.participant), inbound: []};
  if (c && c.pc) (await c.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') out.inbound.push({kind: s.kind, framesDecoded: s.framesDecoded, energy: s.totalAudioEnergy});
  });
  return out;
})()`

// openCall opens the call page in a new browser signed in as cl.
func openCall(t *testing.T, name string, cl *client, v ids.VisitID) *e2e.Browser {
	t.Helper()
	b := e2e.NewBrowser(t, e2e.WithName(name))
	ctx, cancel := context.WithTimeout(b.Context(), e2e.DefaultTimeout)
	defer cancel()
	yes := true
	_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
		Name: signaling.SessionCookie, Value: cl.Cookie, URL: cl.c.apiURL + "/", Path: "/",
		Secure: &yes, HTTPOnly: &yes, SameSite: network.CookieSameSiteStrict,
	})
	if err != nil {
		t.Fatalf("%s: set session cookie: %v", name, err)
	}
	b.Navigate(t, cl.c.apiURL+"/call?visit="+string(v))
	return b
}

// TestE2ENodeLossReconnect: two browsers in a call on media node m1; m1 is
// killed (SIGKILL); within 15 s both are in the call again on m2, decoding
// each other's media. The pages rejoin by themselves (client.js asks the
// join endpoint for a fresh grant when the socket drops, and the endpoint
// moves the visit off the dead node).
func TestE2ENodeLossReconnect(t *testing.T) {
	if js, err := os.ReadFile("../../web/static/js/call.js"); err != nil || !strings.Contains(string(js), "getGrant") {
		// The page's reconnection is being written (web/static/js/call.js);
		// the server side is tested by TestNodeLossRejoin meanwhile.
		if testenv.InCI() {
			t.Fatal("call.js does not pass getGrant to VisitClient: pages cannot rejoin after a node loss")
		}
		t.Skip("waiting on the call page's reconnection: call.js does not pass getGrant to VisitClient yet")
	}
	testenv.Chromium(t)
	c, m1 := oneMediaNode(t)
	prov, v, pat := c.visitWithPatient()

	// The patient is in first, as when a provider admits them from the
	// waiting room and then joins.
	patb := openCall(t, "patient", pat, v)
	if err := patb.Poll(context.Background(), `window.openvisit.client && window.openvisit.client.state === 'connected'`, 45*time.Second); err != nil {
		t.Fatalf("patient: %v", err)
	}
	pb := openCall(t, "provider", prov, v)
	var provID, patID string
	waitFor(t, "both participants to have joined", 30*time.Second, func() bool {
		_ = c.pool.QueryRow(context.Background(), `SELECT COALESCE(max(id::text) FILTER (WHERE role = 'provider'), ''),
			COALESCE(max(id::text) FILTER (WHERE role = 'patient'), '') FROM participants WHERE visit_id = $1`, string(v)).
			Scan(&provID, &patID)
		return provID != "" && patID != ""
	})
	ctx := context.Background()
	if err := pb.Poll(ctx, inCallWith(patID), 45*time.Second); err != nil {
		pb.Dump(t, "provider", pageSummary)
		t.Fatalf("provider: %v", err)
	}
	if err := patb.Poll(ctx, inCallWith(provID), 45*time.Second); err != nil {
		patb.Dump(t, "patient", pageSummary)
		t.Fatalf("patient: %v", err)
	}
	if n := c.nodeOf(v); n != "m1" {
		t.Fatalf("call on %q, want m1", n)
	}
	c.start("m2", "media")
	c.waitLive("m1", "m2")

	m1.signal(syscall.SIGKILL)
	killed := time.Now()
	reconnected := `window.openvisit.client.reconnects >= 1 && `
	errs := make(chan error, 2)
	go func() { errs <- pb.Poll(ctx, reconnected+inCallWith(patID), 15*time.Second) }()
	go func() { errs <- patb.Poll(ctx, reconnected+inCallWith(provID), 15*time.Second) }()
	for range 2 {
		if err := <-errs; err != nil {
			pb.Dump(t, "provider", pageSummary)
			patb.Dump(t, "patient", pageSummary)
			t.Fatalf("after m1 was killed: %v", err)
		}
	}
	t.Logf("both back in the call %v after m1 was killed", time.Since(killed).Round(100*time.Millisecond))
	if n := c.nodeOf(v); n != "m2" {
		t.Errorf("visit on %q after the node loss, want m2", n)
	}
}
