package sfu

import (
	"fmt"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	sfuclient "github.com/openvisit/openvisit/sfu/client"
)

// seqCheck records, per received stream, the last RTP sequence number and
// how many packets arrived out of order (or twice). The test clients have
// no NACK generator (webrtc.NewAPI registers no interceptors), so the SFU
// never retransmits to them: any step back is a reordering.
type seqCheck struct {
	mu        sync.Mutex
	last      map[webrtc.SSRC]uint16
	reordered int
}

func (s *seqCheck) hook(tr *webrtc.TrackRemote, pkt *rtp.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.last[tr.SSRC()]
	if ok && int16(pkt.SequenceNumber-last) <= 0 { //nolint:gosec // serial arithmetic
		s.reordered++
		return
	}
	s.last[tr.SSRC()] = pkt.SequenceNumber
}

// drain reads a client's messages, which this test does not look at, so
// that the client's reader never waits on a full channel (it closes the
// channel when the client ends).
func drain(msgs <-chan sfuclient.Message) {
	for range msgs { //nolint:revive // discarding is the point
	}
}

// TestShardedForwardingKeepsRoomsWhole: with 4 workers, 8 rooms of 2–4
// participants each are placed two per worker, every participant of a
// room is on its room's worker, every participant receives every other's
// audio and video, and no stream arrives reordered.
func TestShardedForwardingKeepsRoomsWhole(t *testing.T) {
	env := newTestEnv(t, func(p *Params) { p.Workers = 4 })
	env.sfu.joinTimeout = joinTimeout // 23 clients join on a shared machine
	if got := len(env.sfu.Workers()); got != 4 {
		t.Fatalf("%d worker sockets, want 4", got)
	}
	sizes := []int{2, 3, 4, 2, 2, 3, 2, 2}
	rooms := make([][]*client, len(sizes))
	checks := map[*client]*seqCheck{}
	for i, n := range sizes {
		visit := ids.NewVisitID()
		for range n {
			c := newClient(t, env, visit)
			defer c.leave()
			go drain(c.msgs)
			sc := &seqCheck{last: map[webrtc.SSRC]uint16{}}
			f := sc.hook
			c.onPacket.Store(&f)
			checks[c] = sc
			rooms[i] = append(rooms[i], c)
		}
	}
	for i, room := range rooms {
		for _, rx := range room {
			for _, tx := range room {
				if rx == tx {
					continue
				}
				for _, kind := range []string{"video", "audio"} {
					waitFor(t, fmt.Sprintf("room %d: %s receives %s's %s", i, rx.id, tx.id, kind),
						func() bool { return rx.received(tx.id, kind) > 20 })
				}
			}
		}
	}
	assertRoomsWhole(t, env.sfu, 2)
	for c, sc := range checks {
		sc.mu.Lock()
		if sc.reordered > 0 {
			t.Errorf("%s received %d packets out of order", c.id, sc.reordered)
		}
		sc.mu.Unlock()
	}
	var fast uint64
	for _, w := range env.sfu.workers {
		fast += w.fast.handled.Load()
		if w.fast.handled.Load() == 0 {
			t.Errorf("worker %d's fast path took no packets", w.idx)
		}
	}
	if fast == 0 {
		t.Fatal("nothing took the fast path")
	}
}

// assertRoomsWhole checks that each room's participants share one worker
// and that every worker holds perWorker rooms.
func assertRoomsWhole(t *testing.T, s *SFU, perWorker int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	count := map[*worker]int{}
	for id, r := range s.rooms {
		var w *worker
		for _, p := range r.participants {
			if w != nil && p.worker != w {
				t.Errorf("room %s: participants on workers %d and %d", id, w.idx, p.worker.idx)
			}
			w = p.worker
		}
		count[w]++
	}
	for _, w := range s.workers {
		if count[w] != perWorker {
			t.Errorf("worker %d holds %d rooms, want %d", w.idx, count[w], perWorker)
		}
	}
}

// TestSplitRoomForwardsAcrossWorkers: a room whose participants are on
// different workers (placement forced; workers.go says why it is still
// correct) still forwards both ways, each publisher's media taken by its
// own worker's fast path and written to the other worker's socket.
func TestSplitRoomForwardsAcrossWorkers(t *testing.T) {
	env := newTestEnv(t, func(p *Params) { p.Workers = 2 })
	var mu sync.Mutex
	next := 0
	env.sfu.forceWorker = func(ids.VisitID, ids.ParticipantID) (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		next++
		return next - 1, true
	}
	visit := ids.NewVisitID()
	a := newClient(t, env, visit)
	defer a.leave()
	go drain(a.msgs)
	b := newClient(t, env, visit)
	defer b.leave()
	go drain(b.msgs)
	for _, kind := range []string{"video", "audio"} {
		waitFor(t, "a receives b's "+kind, func() bool { return a.received(b.id, kind) > 20 })
		waitFor(t, "b receives a's "+kind, func() bool { return b.received(a.id, kind) > 20 })
	}
	env.sfu.mu.Lock()
	r := env.sfu.rooms[visit]
	if r.participants[a.id].worker == r.participants[b.id].worker {
		t.Error("a and b share a worker: the placement was not forced")
	}
	env.sfu.mu.Unlock()
	for _, w := range env.sfu.workers {
		if w.fast.handled.Load() == 0 {
			t.Errorf("worker %d's fast path took no packets", w.idx)
		}
	}
}

// TestPlacementReleased: a room's placement lasts while it has
// participants; the last one leaving frees the worker for other rooms.
func TestPlacementReleased(t *testing.T) {
	env := newTestEnv(t, func(p *Params) { p.Workers = 2 })
	visit := ids.NewVisitID()
	a := newClient(t, env, visit)
	go drain(a.msgs)
	b := newClient(t, env, visit)
	go drain(b.msgs)
	waitFor(t, "two participants", func() bool { return env.sfu.Stats().Participants == 2 })
	env.sfu.mu.Lock()
	pl := env.sfu.placed[visit]
	if pl == nil || pl.refs != 2 || pl.w.rooms != 1 {
		t.Errorf("placement %+v, want 2 holders on a worker with 1 room", pl)
	}
	env.sfu.mu.Unlock()
	a.leave()
	b.leave()
	waitFor(t, "no placement", func() bool {
		env.sfu.mu.Lock()
		defer env.sfu.mu.Unlock()
		return len(env.sfu.placed) == 0 && env.sfu.workers[0].rooms == 0 && env.sfu.workers[1].rooms == 0
	})
}

func TestWorkerAddrs(t *testing.T) {
	got, err := workerAddrs("0.0.0.0:8443", 3)
	if err != nil || fmt.Sprint(got) != "[0.0.0.0:8443 0.0.0.0:8444 0.0.0.0:8445]" {
		t.Fatalf("got %v, %v", got, err)
	}
	got, err = workerAddrs("[::1]:0", 2)
	if err != nil || fmt.Sprint(got) != "[[::1]:0 [::1]:0]" {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"8443", "host:x", "h:65535"} {
		if _, err := workerAddrs(bad, 2); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	for _, n := range []int{-1, maxWorkers + 1} {
		if _, err := workerCount(n); err == nil {
			t.Errorf("workers %d: no error", n)
		}
	}
}
