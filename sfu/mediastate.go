package sfu

import (
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
)

// MediaState is a participant's media connection as this node sees it: the
// fact the provider's waiting panel shows (docs/DESIGN.md decision 12).
type MediaState string

const (
	MediaConnecting   MediaState = "connecting"   // joined; ICE/DTLS not up yet
	MediaConnected    MediaState = "connected"    // media can flow
	MediaDisconnected MediaState = "disconnected" // the path went quiet; ICE may recover
	MediaFailed       MediaState = "failed"       // ICE or DTLS failed, or the client gave up before it connected
	MediaLeft         MediaState = "left"         // left, removed, or the node closed
)

// MediaStateChange is one change of a participant's media state.
type MediaStateChange struct {
	Visit       ids.VisitID
	Participant ids.ParticipantID
	Role        token.Role
	State       MediaState
	At          time.Time
}

// mediaStates hands state changes to Params.OnMediaState from one goroutine
// of its own, so that the hook (a database write) never runs on Pion's
// callbacks or the media path. Changes are coalesced per participant (the
// latest wins), so the queue holds at most one entry per participant
// however slow the hook is. Lifecycle: start in New → notes until Close →
// stop drains what is queued and returns.
type mediaStates struct {
	hook func(MediaStateChange)

	mu      sync.Mutex
	pending map[ids.ParticipantID]MediaStateChange
	order   []ids.ParticipantID // first-noted order of pending
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
}

func (m *mediaStates) start(hook func(MediaStateChange)) {
	m.hook = hook
	m.pending = make(map[ids.ParticipantID]MediaStateChange)
	m.wake = make(chan struct{}, 1)
	m.quit = make(chan struct{})
	m.done = make(chan struct{})
	go m.run()
}

// note queues c; it never blocks.
func (m *mediaStates) note(c MediaStateChange) {
	if m.hook == nil {
		return
	}
	m.mu.Lock()
	if _, ok := m.pending[c.Participant]; !ok {
		m.order = append(m.order, c.Participant)
	}
	m.pending[c.Participant] = c
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *mediaStates) run() {
	defer close(m.done)
	for {
		select {
		case <-m.wake:
			m.flush()
		case <-m.quit:
			m.flush()
			return
		}
	}
}

func (m *mediaStates) flush() {
	for {
		m.mu.Lock()
		if len(m.order) == 0 {
			m.mu.Unlock()
			return
		}
		id := m.order[0]
		m.order = m.order[1:]
		c := m.pending[id]
		delete(m.pending, id)
		m.mu.Unlock()
		m.hook(c)
	}
}

// stop delivers what is queued and ends the goroutine.
func (m *mediaStates) stop() {
	if m.hook == nil {
		return
	}
	close(m.quit)
	<-m.done
}

// mediaStateOf maps a PeerConnection state to what is reported; ok is false
// for states not reported (closed: leave reports left).
func mediaStateOf(st webrtc.PeerConnectionState) (MediaState, bool) {
	switch st {
	case webrtc.PeerConnectionStateNew, webrtc.PeerConnectionStateConnecting:
		return MediaConnecting, true
	case webrtc.PeerConnectionStateConnected:
		return MediaConnected, true
	case webrtc.PeerConnectionStateDisconnected:
		return MediaDisconnected, true
	case webrtc.PeerConnectionStateFailed:
		return MediaFailed, true
	}
	return "", false
}

// participantMedia is a participant's last reported state; it is guarded by
// its own lock because Pion reports states from its own goroutines.
type participantMedia struct {
	mu        sync.Mutex
	state     MediaState
	connected bool // it was connected at some point
	left      bool
}

// setMediaState reports st for p (see reportMedia).
func (p *participant) setMediaState(st MediaState) {
	p.reportMedia(func() (MediaState, bool) { return st, true })
}

// reportMedia reports the state next returns, read under p.media.mu so that
// queued changes keep the order in which states were observed, unless p
// has left or it repeats the last state. After left nothing more is
// reported for this participant object (a rejoin is a new one).
func (p *participant) reportMedia(next func() (MediaState, bool)) {
	m := &p.media
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := next()
	if !ok || m.left || st == m.state {
		return
	}
	m.connected = m.connected || st == MediaConnected
	m.state = st
	p.sfu.states.note(MediaStateChange{Visit: p.visit, Participant: p.id, Role: p.role, State: st, At: time.Now()})
}

// mediaLeft reports p's end: left; or failed when its connection failed,
// or was being made (its offer answered, ICE under way) and never
// connected: the client gave up on it (ICE failed on its side, or it did
// not connect in time), which the provider should see as a connection
// that failed, not as a patient who went away.
func (p *participant) mediaLeft() {
	p.mu.Lock()
	began := p.answered
	p.mu.Unlock()
	m := &p.media
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.left {
		return
	}
	m.left = true
	st := MediaLeft
	if m.state == MediaFailed || (began && !m.connected) {
		st = MediaFailed
	}
	if st == m.state {
		return
	}
	m.state = st
	p.sfu.states.note(MediaStateChange{Visit: p.visit, Participant: p.id, Role: p.role, State: st, At: time.Now()})
}

// onPeerState is the participant's reaction to a PeerConnection state that
// is not about forwarding: the reported media state, and the node's ICE
// failure report. Pion calls its handler on a new goroutine per change, so
// handlers may run out of order: the state reported is the PeerConnection's
// current one, never the (maybe stale) argument.
func (p *participant) onPeerState(st webrtc.PeerConnectionState) {
	p.reportMedia(func() (MediaState, bool) { return mediaStateOf(p.pc.ConnectionState()) })
	if st == webrtc.PeerConnectionStateFailed {
		p.sfu.noteICEFailed(p)
	}
}
