package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
)

// participant is one joined WebSocket and its PeerConnection. Lifecycle:
// created after a valid join → in its room (join) → negotiating → left
// (leave: out of the room, PeerConnection closed, goroutines ended). A left
// participant is never reused; a rejoin makes a new one.
type participant struct {
	sfu     *SFU
	id      ids.ParticipantID
	visit   ids.VisitID
	role    token.Role
	subject string
	log     *slog.Logger
	ws      *wsConn
	pc      *webrtc.PeerConnection

	// mu serialises signaling on pc and guards the fields below.
	mu sync.Mutex
	// gotOffer: the client's one offer arrived. answered: it was answered,
	// so the server may offer. offerOut: a server offer awaits its answer.
	// pending: something changed while an offer could not be made.
	gotOffer, answered, offerOut, pending bool
	closed                                bool
	subs                                  map[*upTrack]*webrtc.RTPSender
	nTracks                               int

	// candMu holds back local candidates until the answer to the client's
	// offer is queued: a browser cannot add a candidate before it has the
	// remote description.
	candMu     sync.Mutex
	candReady  bool
	candQueued []webrtc.ICECandidateInit

	wg        sync.WaitGroup // read loops and RTCP readers
	leaveOnce sync.Once
}

func (s *SFU) newParticipant(c token.Claims, ws *wsConn) (*participant, error) {
	p := &participant{
		sfu:     s,
		id:      c.Participant,
		visit:   c.Visit,
		role:    c.Role,
		subject: c.Subject,
		log:     s.log.With("visit", string(c.Visit), "participant", string(c.Participant)),
		ws:      ws,
		subs:    make(map[*upTrack]*webrtc.RTPSender),
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("sfu: new peer connection: %w", err)
	}
	p.pc = pc
	pc.OnICECandidate(p.onCandidate)
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		p.log.Debug("peer connection state", "state", st.String())
		if st == webrtc.PeerConnectionStateConnected {
			// Senders bound before DTLS was up dropped their first
			// keyframe; ask again now that media can flow.
			p.mu.Lock()
			for t := range p.subs {
				t.requestKeyframe(true)
			}
			p.mu.Unlock()
		}
		if st == webrtc.PeerConnectionStateFailed {
			// ICE failed or stayed disconnected past its timeout. The
			// client should join again; end the socket (which leaves).
			p.ws.kick(closeReason{close: closeGoingAway})
		}
	})
	return p, nil
}

func (p *participant) info() participantInfo {
	return participantInfo{ID: p.id, Role: p.role}
}

// kick ends p's socket with why and removes p at once, so that a removed
// participant's media stops before kick returns.
func (p *participant) kick(why closeReason) {
	p.ws.kick(why)
	p.leave()
}

// leave takes p out of its room, closes its PeerConnection and waits for its
// goroutines. It is idempotent and must not be called with p.mu held.
func (p *participant) leave() {
	p.leaveOnce.Do(func() {
		p.sfu.removeParticipant(p)
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		if err := p.pc.Close(); err != nil {
			p.log.Debug("close peer connection", "err", err)
		}
		p.wg.Wait()
		p.log.Info("participant left")
	})
}

// handle dispatches one client message after join. A returned error ends
// the socket with its code.
func (p *participant) handle(m clientMessage) error {
	switch m.Type {
	case typeOffer:
		return p.handleOffer(*m.SDP)
	case typeAnswer:
		return p.handleAnswer(*m.SDP)
	case typeCandidate:
		c := m.Candidate
		err := p.pc.AddICECandidate(webrtc.ICECandidateInit{
			Candidate: c.Candidate, SDPMid: c.SDPMid,
			SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment,
		})
		if err != nil {
			// Not fatal: a candidate can race a renegotiation, and ICE
			// works with the others.
			p.log.Debug("remote candidate refused", "err", err)
		}
		return nil
	case typeLeave:
		return errLeave
	}
	return fail(CodeBadMessage, errors.New("unexpected message after join"))
}

var errLeave = errors.New("leave")

// handleOffer answers the client's one offer, then subscribes p to the
// room's tracks, which makes the server's first offer.
func (p *participant) handleOffer(raw string) error {
	p.mu.Lock()
	if p.gotOffer {
		p.mu.Unlock()
		return fail(CodeBadMessage, errors.New("second client offer"))
	}
	p.gotOffer = true
	if err := checkSDP(raw); err != nil {
		p.mu.Unlock()
		return fail(CodeBadSDP, err)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: raw}); err != nil {
		p.mu.Unlock()
		return fail(CodeBadSDP, err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.mu.Unlock()
		return fail(CodeBadSDP, err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		p.mu.Unlock()
		return fail(CodeInternal, err)
	}
	p.ws.send(serverMessage{Type: typeAnswer, SDP: answer.SDP})
	p.answered = true
	p.mu.Unlock()

	p.releaseCandidates()
	// After answered is set: a track published from now on subscribes p
	// itself, an earlier one is in this list; subscribe ignores repeats.
	p.subscribe(p.sfu.tracksFor(p))
	return nil
}

func (p *participant) handleAnswer(raw string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.offerOut {
		return fail(CodeBadMessage, errors.New("answer without offer"))
	}
	if err := checkSDP(raw); err != nil {
		return fail(CodeBadSDP, err)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: raw}); err != nil {
		return fail(CodeBadSDP, err)
	}
	p.offerOut = false
	if p.pending {
		return p.negotiateLocked()
	}
	return nil
}

// checkSDP refuses an SDP that does not parse or lacks a DTLS fingerprint
// (at session level, or on every media section).
func checkSDP(raw string) error {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(raw); err != nil {
		return fmt.Errorf("sfu: parse sdp: %w", err)
	}
	if _, ok := d.Attribute("fingerprint"); ok {
		return nil
	}
	if len(d.MediaDescriptions) == 0 {
		return errNoFingerprint
	}
	for _, m := range d.MediaDescriptions {
		if _, ok := m.Attribute("fingerprint"); !ok {
			return errNoFingerprint
		}
	}
	return nil
}

// negotiateLocked makes a server offer now, or notes that one is due when
// the client's offer is not answered yet or an offer is outstanding.
func (p *participant) negotiateLocked() error {
	if p.closed {
		return nil
	}
	if !p.answered || p.offerOut {
		p.pending = true
		return nil
	}
	p.pending = false
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return fail(CodeInternal, fmt.Errorf("create offer: %w", err))
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return fail(CodeInternal, fmt.Errorf("set local offer: %w", err))
	}
	p.offerOut = true
	p.ws.send(serverMessage{Type: typeOffer, SDP: offer.SDP})
	return nil
}

// renegotiate is negotiateLocked for callers outside the socket's reader:
// a failure ends the socket.
func (p *participant) renegotiateLocked() {
	if err := p.negotiateLocked(); err != nil {
		p.log.Error("renegotiate", "err", err)
		p.ws.kick(closeReason{code: CodeInternal})
	}
}

// subscribe adds ts to what p receives, as new send-only transceivers, and
// renegotiates once.
func (p *participant) subscribe(ts []*upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.answered {
		return
	}
	changed := false
	for _, t := range ts {
		if t.closed.Load() || p.subs[t] != nil {
			continue
		}
		tr, err := p.pc.AddTransceiverFromTrack(t.local, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			p.log.Warn("add transceiver", "err", err)
			continue
		}
		sender := tr.Sender()
		p.subs[t] = sender
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			t.readRTCP(sender)
		}()
		changed = true
	}
	if changed {
		p.renegotiateLocked()
	}
}

// unsubscribe removes ts from what p receives and renegotiates once.
func (p *participant) unsubscribe(ts []*upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	changed := false
	for _, t := range ts {
		sender := p.subs[t]
		if sender == nil {
			continue
		}
		delete(p.subs, t)
		if err := p.pc.RemoveTrack(sender); err != nil {
			p.log.Debug("remove track", "err", err)
			continue
		}
		changed = true
	}
	if changed {
		p.renegotiateLocked()
	}
}

// onCandidate sends a local ICE candidate once the answer is queued.
func (p *participant) onCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return // end of gathering; the protocol has no message for it
	}
	init := c.ToJSON()
	p.candMu.Lock()
	defer p.candMu.Unlock()
	if !p.candReady {
		p.candQueued = append(p.candQueued, init)
		return
	}
	p.ws.send(candidateMessage(init))
}

func (p *participant) releaseCandidates() {
	p.candMu.Lock()
	defer p.candMu.Unlock()
	p.candReady = true
	for _, c := range p.candQueued {
		p.ws.send(candidateMessage(c))
	}
	p.candQueued = nil
}

func candidateMessage(c webrtc.ICECandidateInit) serverMessage {
	return serverMessage{Type: typeCandidate, Candidate: &candidateInit{
		Candidate: c.Candidate, SDPMid: c.SDPMid,
		SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment,
	}}
}

// onTrack publishes a track the client sends and forwards it until it ends.
// It runs on a goroutine Pion starts per track; p.wg tracks it.
func (p *participant) onTrack(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if !announced(p) {
		// A recorder only listens; what it might send is not forwarded.
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.nTracks++
	n := p.nTracks
	p.mu.Unlock()
	defer p.wg.Done()

	kind := remote.Kind().String()
	// Our own track ID, not the client's: the client's msid text would be
	// passed on to every other page.
	t, err := newUpTrack(p, remote, kind+"-"+strconv.Itoa(n))
	if err != nil {
		p.log.Warn("publish track", "kind", kind, "err", err)
		return
	}
	if !p.sfu.publish(t) {
		return
	}
	p.log.Debug("track published", "kind", kind)
	t.forward()
	p.sfu.unpublish(t)
}
