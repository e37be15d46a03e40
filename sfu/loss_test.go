package sfu

import (
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
)

// TestSubscriberLoss: SetSubscriberLoss drops what the node sends to one
// subscriber only; another subscriber of the same publisher keeps
// receiving, and the lossy one recovers when the rate goes back to 0.
func TestSubscriberLoss(t *testing.T) {
	env := newTestEnv(t)
	defer env.close()
	visit := ids.NewVisitID()
	a := newClient(t, env, visit)
	defer a.leave()
	b := newClient(t, env, visit)
	defer b.leave()
	c := newClient(t, env, visit)
	defer c.leave()
	for _, sub := range []*client{b, c} {
		waitFor(t, "a subscriber receives a's video", func() bool { return sub.received(a.id, "video") > 10 })
	}

	if env.sfu.SetSubscriberLoss(visit, "nobody", 50) || env.sfu.SetSubscriberLoss(ids.NewVisitID(), b.id, 50) {
		t.Fatal("SetSubscriberLoss reports a participant that is not there")
	}
	if !env.sfu.SetSubscriberLoss(visit, b.id, 1000) {
		t.Fatal("SetSubscriberLoss: b is not there")
	}
	// What was already on its way to b arrives; then nothing more.
	time.Sleep(300 * time.Millisecond)
	bFrom, cFrom := b.received(a.id, "video"), c.received(a.id, "video")
	waitFor(t, "c keeps receiving", func() bool { return c.received(a.id, "video") > cFrom+50 })
	if n := b.received(a.id, "video") - bFrom; n != 0 {
		t.Fatalf("b received %d video packets under 100%% loss", n)
	}

	env.sfu.SetSubscriberLoss(visit, b.id, 0)
	waitFor(t, "b receives again", func() bool { return b.received(a.id, "video") > bFrom+10 })
}
