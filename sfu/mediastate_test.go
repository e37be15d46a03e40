package sfu

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// stateLog records the media states an SFU reports, per participant.
type stateLog struct {
	mu   sync.Mutex
	seen map[ids.ParticipantID][]MediaState
	gate chan struct{} // when not nil, the hook waits on it (a slow database)
}

func newStateLog() *stateLog { return &stateLog{seen: map[ids.ParticipantID][]MediaState{}} }

func (l *stateLog) hook(c MediaStateChange) {
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[c.Participant] = append(l.seen[c.Participant], c.State)
}

func (l *stateLog) last(p ids.ParticipantID) MediaState {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen[p]
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func (l *stateLog) all(p ids.ParticipantID) []MediaState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]MediaState(nil), l.seen[p]...)
}

// TestMediaStateReported: the SFU reports each participant's media state
// from its PeerConnection: connecting at join, connected when media can
// flow, left when it leaves.
func TestMediaStateReported(t *testing.T) {
	states := newStateLog()
	env := newTestEnv(t, func(p *Params) { p.OnMediaState = states.hook })
	visit := ids.NewVisitID()
	a := newClient(t, env, visit)
	b := newClient(t, env, visit)
	callBothWays(t, a, b)
	for _, c := range []*client{a, b} {
		waitFor(t, "connected reported", func() bool { return states.last(c.id) == MediaConnected })
	}
	a.leave()
	waitFor(t, "left reported", func() bool { return states.last(a.id) == MediaLeft })
	got := states.all(a.id)
	if got[0] != MediaConnecting {
		t.Errorf("first state %q, want connecting (all: %v)", got[0], got)
	}
	b.leave()
	_ = env.sfu.Close() // delivers what is queued
	if s := states.last(b.id); s != MediaLeft {
		t.Errorf("b's last state %q after Close, want left", s)
	}
}

// TestMediaStateFailed: a participant whose ICE never connects is reported
// failed, and stays failed (not left) when its socket is closed for it.
func TestMediaStateFailed(t *testing.T) {
	states := newStateLog()
	env := newTestEnv(t, func(p *Params) {
		p.OnMediaState = states.hook
		p.ConfigureWebRTC = func(se *webrtc.SettingEngine) {
			loopbackOnly(se)
			se.SetICETimeouts(500*time.Millisecond, time.Second, 200*time.Millisecond)
		}
	})
	visit := ids.NewVisitID()
	c := joinedClient(t, env, visit, webrtc.Configuration{}, nil)
	c.pc.OnICECandidate(nil) // the client's candidates never reach the node
	if _, err := c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	c.offer()
	_ = c.pc.Close() // and it never answers a check
	if code := c.expectClose(t); code != protocol.CloseGoingAway {
		t.Fatalf("close %d, want 1001 after ICE failed", code)
	}
	waitFor(t, "the participant to leave", func() bool { return env.sfu.Stats().Participants == 0 })
	_ = env.sfu.Close()
	if s := states.last(c.id); s != MediaFailed {
		t.Fatalf("last state %q (all %v), want failed", s, states.all(c.id))
	}
	if n := env.sfu.ICEFailures(); n != 1 {
		t.Errorf("ICE failures = %d, want 1", n)
	}
}

// TestMediaStateHookOffMediaPath: a hook that blocks (a database that does
// not answer) holds up neither joins nor leaves; changes queue coalesced,
// one per participant, and the latest is delivered once it answers.
func TestMediaStateHookOffMediaPath(t *testing.T) {
	states := newStateLog()
	states.gate = make(chan struct{})
	env := newTestEnv(t, func(p *Params) { p.OnMediaState = states.hook })
	visit := ids.NewVisitID()
	var queuedIDs []ids.ParticipantID
	for i := 0; i < 3; i++ {
		c := joinedSocket(t, env, visit)
		writeJSON(t, c, protocol.Leave())
		if code := expectClose(t, c); code != 1000 {
			t.Fatalf("close %d", code)
		}
	}
	waitFor(t, "everyone gone while the hook is blocked", func() bool { return env.sfu.Stats().Participants == 0 })
	env.sfu.states.mu.Lock()
	queued := len(env.sfu.states.pending)
	for id := range env.sfu.states.pending {
		queuedIDs = append(queuedIDs, id)
	}
	env.sfu.states.mu.Unlock()
	// The first change may already be inside the blocked hook.
	if queued < 2 || queued > 3 {
		t.Fatalf("%d changes queued for 3 participants, want one each", queued)
	}
	close(states.gate)
	_ = env.sfu.Close()
	for _, id := range queuedIDs {
		if s := states.last(id); s != MediaLeft {
			t.Errorf("participant %s: last state %q, want left", id, s)
		}
	}
}

// TestMediaStateGaveUp: a participant whose connection was being made and
// never connected, and which then leaves (the client gave up: its ICE
// failed first, or it timed out and rejoins), is reported failed, not left;
// one that never offered is reported left.
func TestMediaStateGaveUp(t *testing.T) {
	states := newStateLog()
	env := newTestEnv(t, func(p *Params) { p.OnMediaState = states.hook })
	visit := ids.NewVisitID()
	c := joinedClient(t, env, visit, webrtc.Configuration{}, nil)
	c.pc.OnICECandidate(nil)
	if _, err := c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	c.offer()
	_ = c.pc.Close()
	if m, err := c.conn.Read(); err != nil || m.Type != "answer" {
		t.Fatalf("got %+v (%v), want answer", m, err)
	}
	c.send(protocol.Leave())
	if code := c.expectClose(t); code != 1000 {
		t.Fatalf("close %d", code)
	}
	idle := joinedSocket(t, env, visit)
	writeJSON(t, idle, protocol.Leave())
	expectClose(t, idle)
	waitFor(t, "everyone gone", func() bool { return env.sfu.Stats().Participants == 0 })
	_ = env.sfu.Close()
	if s := states.last(c.id); s != MediaFailed {
		t.Errorf("gave up before connecting: last state %q (all %v), want failed", s, states.all(c.id))
	}
	for id, seen := range states.seen {
		if id != c.id && seen[len(seen)-1] != MediaLeft {
			t.Errorf("never offered: states %v, want left last", seen)
		}
	}
}
