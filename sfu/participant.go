package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/protocol"
	"github.com/openvisit/openvisit/sfu/srtpkeys"
)

// participant is one joined WebSocket and its PeerConnection. Lifecycle:
// created after a valid join → in its room (join) → negotiating → left
// (leave: out of the room, PeerConnection closed, goroutines ended). A left
// participant is never reused; a rejoin makes a new one.
type participant struct {
	sfu   *SFU
	id    ids.ParticipantID
	visit ids.VisitID
	role  token.Role
	// policy is what role means for p's media, fixed at join.
	policy policy
	// tokenID is the join token that admitted p: revocations name it.
	tokenID string
	log     *slog.Logger
	ws      *wsConn
	pc      *webrtc.PeerConnection
	// worker is the forwarding worker whose socket p's UDP media uses
	// (workers.go); placed: p holds its room's placement there.
	worker *worker
	placed bool
	// bwe estimates the bandwidth towards this participant (GCC over TWCC
	// feedback); nil when the interceptor made none.
	bwe cc.BandwidthEstimator
	// prep is the PeerConnection's sendPrep: its bwe switch turns GCC (and
	// the TWCC stamps it needs) on once p has a layer choice to make.
	prep *sendPrep
	// inline: p's media runs over UDP, so downTracks write from the
	// publisher's read loop (see downTrack.push).
	inline atomic.Bool
	// keys are the DTLS secrets of pc, for the fast path; layers are the
	// layers of the tracks p publishes (copy on write, under mu), where
	// the fast path finds a stream's layer without taking mu.
	keys   *srtpkeys.Handshake
	layers atomic.Pointer[[]*layer]

	// mu serialises signaling on pc and guards the fields below.
	mu sync.Mutex
	// gotOffer: the client's one offer arrived. answered: it was answered,
	// so the server may offer. offerOut: a server offer awaits its answer.
	// pending: something changed while an offer could not be made.
	gotOffer, answered, offerOut, pending bool
	closed                                bool
	offered                               int // media sections of the outstanding server offer
	subs                                  map[*upTrack]*downTrack
	// ups are the tracks p publishes, by receiver: a simulcast track's
	// layers arrive as several OnTrack calls on one receiver.
	ups map[*webrtc.RTPReceiver]*upTrack

	// candMu holds back local candidates until the answer to the client's
	// offer is queued: a browser cannot add a candidate before it has the
	// remote description.
	candMu     sync.Mutex
	candReady  bool
	candQueued []webrtc.ICECandidateInit

	// goMu guards goClosed: once set (by leave), no goroutine is added to
	// wg. It is separate from mu because Pion calls Bind (which starts a
	// writer) while a caller holds mu.
	goMu      sync.Mutex
	goClosed  bool
	wg        sync.WaitGroup // read loops, RTCP readers, writers, allocLoop
	stopAlloc chan struct{}
	// layersWake asks allocLoop to resume a paused layer of p's tracks
	// now (see wakeLayers).
	layersWake chan struct{}
	leaveOnce  sync.Once
	media      participantMedia // the reported media state (mediastate.go)
}

// updateTransport notes whether p's selected ICE pair is UDP, which lets
// downTracks write inline.
func (p *participant) updateTransport() {
	pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	udp := err == nil && pair != nil && pair.Local != nil && pair.Remote != nil && pair.Local.Protocol == webrtc.ICEProtocolUDP
	p.inline.Store(udp)
	p.updateFastPath(pair, udp)
}

// updateFastPath puts p on the receive fast path at the address of its
// selected ICE pair, or takes it off (not UDP, or no keys known).
func (p *participant) updateFastPath(pair *webrtc.ICECandidatePair, udp bool) {
	f := &p.worker.fast
	if !udp || p.sfu.noFastPath {
		f.removePeer(p)
		return
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		f.removePeer(p) // an mDNS name: the mux knows the address, we do not
		return
	}
	if err := f.addPeer(p, netip.AddrPortFrom(ip, pair.Remote.Port), p.keys.RemoteContext); err != nil {
		p.log.Debug("receive fast path off", "err", err)
		f.removePeer(p)
	}
}

// startGoroutine counts a goroutine p will wait for in leave, unless p is
// leaving (false).
func (p *participant) startGoroutine() bool {
	p.goMu.Lock()
	defer p.goMu.Unlock()
	if p.goClosed {
		return false
	}
	p.wg.Add(1)
	return true
}

func (s *SFU) newParticipant(c token.Claims, ws *wsConn) (*participant, error) {
	p := &participant{
		sfu:     s,
		id:      c.Participant,
		visit:   c.Visit,
		role:    c.Role,
		policy:  policyFor(c.Role),
		tokenID: c.ID,
		log:     s.log.With("visit", string(c.Visit), "participant", string(c.Participant)),
		ws:      ws,
		subs:    make(map[*upTrack]*downTrack),
		ups:     make(map[*webrtc.RTPReceiver]*upTrack),

		stopAlloc:  make(chan struct{}),
		layersWake: make(chan struct{}, 1),
	}
	p.keys = &srtpkeys.Handshake{}
	noLayers := []*layer{}
	p.layers.Store(&noLayers)
	p.worker, p.placed = s.place(c.Visit, c.Participant)
	pc, bwe, prep, err := s.newPeerConnection(p.keys, p.worker)
	if err != nil {
		p.unplace()
		return nil, fmt.Errorf("sfu: new peer connection: %w", err)
	}
	p.pc, p.bwe, p.prep = pc, bwe, prep
	p.startGoroutine()
	go p.allocLoop(p.stopAlloc)
	// A new pair may mean a new address: the fast path follows it.
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) {
		if pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
			p.updateTransport()
		}
	})
	pc.OnICECandidate(p.onCandidate)
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		p.log.Debug("peer connection state", "state", st.String())
		if st == webrtc.PeerConnectionStateConnected {
			p.updateTransport()
			// Senders bound before DTLS was up dropped their first
			// keyframe; ask again now that media can flow.
			p.mu.Lock()
			for t, d := range p.subs {
				t.requestKeyframe(int(d.target.Load()), true)
			}
			p.mu.Unlock()
		}
		p.onPeerState(st) // mediastate.go; before the kick below, which leaves
		if st == webrtc.PeerConnectionStateFailed {
			// ICE failed or stayed disconnected past its timeout. The
			// client should join again; end the socket (which leaves).
			p.ws.kick(closeReason{close: protocol.CloseGoingAway})
		}
	})
	return p, nil
}

// midOf returns the mid of recv's transceiver ("" if none): how the
// publisher names the track in a layers message.
func midOf(pc *webrtc.PeerConnection, recv *webrtc.RTPReceiver) string {
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == recv {
			return tr.Mid()
		}
	}
	return ""
}

func (p *participant) info() protocol.Participant {
	return protocol.Participant{ID: p.id, Role: string(p.role)}
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
		p.mediaLeft()
		p.sfu.removeParticipant(p)
		p.worker.fast.removePeer(p)
		p.unplace()
		p.mu.Lock()
		p.closed = true
		for t, d := range p.subs {
			t.removeDown(d)
			d.close()
		}
		p.mu.Unlock()
		close(p.stopAlloc)
		if err := p.pc.Close(); err != nil {
			p.log.Debug("close peer connection", "err", err)
		}
		p.goMu.Lock()
		p.goClosed = true
		p.goMu.Unlock()
		p.wg.Wait()
		p.log.Info("participant left")
	})
}

// unplace releases p's hold on its room's placement, once.
func (p *participant) unplace() {
	if p.placed {
		p.placed = false
		p.sfu.unplace(p.visit, p.worker)
	}
}

// handle dispatches one client message after join. A returned error ends
// the socket with its code.
func (p *participant) handle(m protocol.ClientMessage) error {
	switch m.Type {
	case protocol.TypeOffer:
		return p.handleOffer(*m.SDP)
	case protocol.TypeAnswer:
		return p.handleAnswer(*m.SDP)
	case protocol.TypeCandidate:
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
	case protocol.TypeLayerHint:
		p.mu.Lock()
		for t, d := range p.subs {
			if t.id == *m.Track {
				d.setHint(*m.Width, *m.Height)
			}
		}
		p.mu.Unlock()
		return nil
	case protocol.TypeLeave:
		return errLeave
	}
	return fail(protocol.CodeBadMessage, errors.New("unexpected message after join"))
}

var errLeave = errors.New("leave")

// handleOffer answers the client's one offer, then subscribes p to the
// room's tracks, which makes the server's first offer.
func (p *participant) handleOffer(raw string) error {
	p.mu.Lock()
	if p.gotOffer {
		p.mu.Unlock()
		return fail(protocol.CodeBadMessage, errors.New("second client offer"))
	}
	p.gotOffer = true
	if err := checkOffer(raw); err != nil {
		p.mu.Unlock()
		return err
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: raw}); err != nil {
		p.mu.Unlock()
		return fail(protocol.CodeBadSDP, err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.mu.Unlock()
		return fail(protocol.CodeBadSDP, err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		p.mu.Unlock()
		return fail(protocol.CodeInternal, err)
	}
	p.ws.send(protocol.ServerMessage{Type: protocol.TypeAnswer, SDP: answer.SDP})
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
		return fail(protocol.CodeBadMessage, errors.New("answer without offer"))
	}
	if err := checkAnswer(raw, p.offered); err != nil {
		return err
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: raw}); err != nil {
		return fail(protocol.CodeBadSDP, err)
	}
	p.offerOut = false
	if p.pending {
		return p.negotiateLocked()
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
		return fail(protocol.CodeInternal, fmt.Errorf("create offer: %w", err))
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return fail(protocol.CodeInternal, fmt.Errorf("set local offer: %w", err))
	}
	p.offerOut = true
	p.offered = mediaSections(offer.SDP)
	p.ws.send(protocol.ServerMessage{Type: protocol.TypeOffer, SDP: offer.SDP})
	return nil
}

// renegotiate is negotiateLocked for callers outside the socket's reader:
// a failure ends the socket.
func (p *participant) renegotiateLocked() {
	if err := p.negotiateLocked(); err != nil {
		p.log.Error("renegotiate", "err", err)
		p.ws.kick(closeReason{code: protocol.CodeInternal})
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
		d := newDownTrack(t, p)
		tr, err := p.pc.AddTransceiverFromTrack(d, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			p.log.Warn("add transceiver", "err", err)
			continue
		}
		d.sender = tr.Sender()
		p.subs[t] = d
		t.addDown(d)
		if p.startGoroutine() {
			go func() {
				defer p.wg.Done()
				d.readRTCP(d.sender)
			}()
		}
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
		d := p.subs[t]
		if d == nil {
			continue
		}
		delete(p.subs, t)
		t.removeDown(d)
		d.close()
		if err := p.pc.RemoveTrack(d.sender); err != nil {
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

func candidateMessage(c webrtc.ICECandidateInit) protocol.ServerMessage {
	return protocol.ServerMessage{Type: protocol.TypeCandidate, Candidate: &protocol.CandidateInit{
		Candidate: c.Candidate, SDPMid: c.SDPMid,
		SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment,
	}}
}

// onTrack publishes a track the client sends and forwards it until it ends.
// A simulcast track calls it once per layer (RID); the first call makes and
// publishes the upTrack, each call runs its layer's read loop, and the last
// loop to end unpublishes the track. It runs on a goroutine Pion starts per
// track; p.wg tracks it.
func (p *participant) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	if p.policy.listenOnly {
		return // what it might send is not forwarded
	}
	mid := midOf(p.pc, recv)
	p.mu.Lock()
	if p.closed || !p.startGoroutine() {
		p.mu.Unlock()
		return
	}
	defer p.wg.Done()
	t := p.ups[recv]
	created := t == nil
	if created {
		kind := remote.Kind().String()
		// Our own track ID, not the client's: the client's msid text would
		// be passed on to every other page. Unique on the node, so that a
		// layer_hint names one track.
		t = newUpTrack(p, remote, recv, kind+"-"+strconv.FormatUint(p.sfu.trackSeq.Add(1), 10))
		t.mid = mid
		p.ups[recv] = t
	}
	t.live.Add(1)
	p.mu.Unlock()

	l := t.addLayer(remote)
	if l != nil {
		p.mu.Lock()
		next := append(append([]*layer{}, *p.layers.Load()...), l)
		p.layers.Store(&next)
		p.mu.Unlock()
		if created && !p.sfu.publish(t) {
			l = nil
		} else if created {
			p.log.Debug("track published", "kind", remote.Kind().String())
		}
	}
	if l != nil {
		l.forward()
		l.ended.Store(true)
		p.mu.Lock()
		next := make([]*layer, 0, len(*p.layers.Load()))
		for _, o := range *p.layers.Load() {
			if o != l {
				next = append(next, o)
			}
		}
		p.layers.Store(&next)
		p.mu.Unlock()
	}
	if t.live.Add(-1) == 0 {
		p.sfu.unpublish(t)
	}
}
