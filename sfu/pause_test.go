package sfu

import (
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// pauseRig is a publisher with one simulcast video track (RIDs q, h, f) as
// the SFU sees it, and a socket queue that collects what the publisher is
// told. The rig's clock (now, ns since up.start) drives the publisher's
// bookkeeping and the subscribers' selection; the wall clock, which
// newDownTrack's choice reads, is an hour past it, long after any packet.
type pauseRig struct {
	t   *testing.T
	pub *participant
	up  *upTrack
	now int64
}

func newPauseRig(t *testing.T, rids []string) *pauseRig {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	pub := &participant{id: "pub", log: slog.New(slog.DiscardHandler), pc: pc,
		ws: newWSConn(nil), layersWake: make(chan struct{}, 1)}
	up := &upTrack{owner: pub, id: "video-1", mid: "1", kind: webrtc.RTPCodecTypeVideo,
		ck: codecVP8, start: time.Now().Add(-time.Hour)}
	empty := []*downTrack{}
	up.downs.Store(&empty)
	rates := []int64{150_000, 500_000, 1_500_000}
	widths := []int32{320, 640, 1280}
	for q, rid := range rids {
		l := &layer{up: up, q: q, rid: rid, ssrc: uint32(100 + q)} //nolint:gosec // < 3
		l.lastKeyframeReq.Store(-int64(keyframeInterval))
		l.resumedAt.Store(-int64(time.Hour))
		l.bitrate.Store(rates[q])
		l.width.Store(widths[q])
		l.height.Store(widths[q] * 9 / 16)
		up.layers[q].Store(l)
	}
	r := &pauseRig{t: t, pub: pub, up: up, now: int64(10 * time.Second)}
	r.packets()
	return r
}

// subscribe adds a subscriber of role to the track, as subscribe does.
func (r *pauseRig) subscribe(role token.Role) *downTrack {
	d := newDownTrack(r.up, &participant{id: "sub", role: role, policy: policyFor(role), log: slog.New(slog.DiscardHandler)})
	d.nextProbe = 1 << 62 // no probing unless a test asks for it
	r.up.addDown(d)
	return d
}

// packets has the publisher send a packet now on each layer it sends: the
// ones not paused, as a browser obeying the layers messages would.
func (r *pauseRig) packets() {
	for q := range maxLayers {
		if l := r.up.layer(q); l != nil && !l.paused.Load() {
			l.lastPacket.Store(r.now)
		}
	}
}

// selectLayer runs d's allocation step at the rig's clock, with budget
// bits/s and no congestion.
func (r *pauseRig) selectLayer(d *downTrack, budget int64) {
	d.selectLayerAt(budget, false, false, r.now)
}

// tick advances the clock by d (with packets every 250 ms, as the
// allocator ticks) and runs the publisher's layer bookkeeping on each tick.
func (r *pauseRig) tick(d time.Duration) {
	for end := r.now + int64(d); r.now < end; {
		r.now = min(end, r.now+int64(allocInterval))
		r.packets()
		r.pub.updateTrackLayers(r.up, r.now)
	}
}

// message returns the next message the publisher was sent, or nil.
func (r *pauseRig) message() *protocol.LayersMessage {
	select {
	case m := <-r.pub.ws.out:
		lm, ok := m.(protocol.LayersMessage)
		if !ok {
			r.t.Fatalf("publisher got %#v, want a layers message", m)
		}
		return &lm
	default:
		return nil
	}
}

func (r *pauseRig) wantMessage(paused ...string) {
	r.t.Helper()
	m := r.message()
	if m == nil {
		r.t.Fatalf("no layers message, want paused %q", paused)
	}
	if m.Type != protocol.TypeLayers || m.Mid != "1" || !slices.Equal(m.Paused, paused) || m.Paused == nil {
		r.t.Fatalf("publisher told %+v, want layers for mid 1 paused %q", *m, paused)
	}
	if extra := r.message(); extra != nil {
		r.t.Fatalf("a second message %+v", *extra)
	}
}

func (r *pauseRig) wantNoMessage() {
	r.t.Helper()
	if m := r.message(); m != nil {
		r.t.Fatalf("publisher told %+v, want nothing", *m)
	}
}

// woken reports (and clears) a request to resume layers at once.
func (r *pauseRig) woken() bool {
	select {
	case <-r.pub.layersWake:
		return true
	default:
		return false
	}
}

// TestPauseUnwatchedLayers drives the pause state machine: a subscriber
// that stops showing the video (hint 0×0) gets every layer paused at the
// publisher after pauseGrace, told once; the paused layers stay
// selectable though no packet comes, and showing the video again resumes
// the layer chosen at once, with a keyframe request.
func TestPauseUnwatchedLayers(t *testing.T) {
	r := newPauseRig(t, []string{"q", "h", "f"})
	d := r.subscribe(token.RoleProvider)
	r.selectLayer(d, 5_000_000)
	if got := d.target.Load(); got != 2 {
		t.Fatalf("target %d, want 2", got)
	}
	r.tick(5 * time.Second)
	// The subscriber takes f; q keeps running while anyone watches (the
	// fallback under congestion), so only h is paused.
	r.wantMessage("h")

	d.setHint(0, 0)
	r.selectLayer(d, 5_000_000)
	if got := d.target.Load(); got != -1 {
		t.Fatalf("target %d after a 0×0 hint, want -1", got)
	}
	// The first tick sees f unwanted; the grace runs from there.
	r.tick(pauseGrace)
	r.wantNoMessage()
	r.tick(allocInterval)
	r.wantMessage("q", "h", "f")
	r.tick(10 * time.Second)
	r.wantNoMessage() // sent on change only

	// The publisher obeyed: no packet for 10 s. Only the pause keeps the
	// layers selectable.
	if q := r.up.highestActiveAt(r.now); q != 2 {
		t.Fatalf("highestActive %d with every layer paused, want 2", q)
	}
	before := r.up.layer(2).lastKeyframeReq.Load()
	d.setHint(1280, 720)
	r.selectLayer(d, 5_000_000)
	if got := d.target.Load(); got != 2 {
		t.Fatalf("target %d after showing the video again, want 2 (paused, still selectable)", got)
	}
	if !r.woken() {
		t.Fatal("choosing a paused layer did not wake the publisher's allocator")
	}
	r.pub.updateTrackLayers(r.up, r.now) // what the wake runs, at once
	r.wantMessage("h")                   // f chosen, q the fallback
	if l := r.up.layer(2); l.paused.Load() || l.lastKeyframeReq.Load() == before {
		t.Fatalf("layer 2 paused %v, keyframe asked %v: want resumed with a keyframe request",
			l.paused.Load(), l.lastKeyframeReq.Load() != before)
	}

	// A smaller tile: the subscriber switches down to h (resumed), f stays
	// wanted as current until the switch, then is paused after the grace.
	d.current.Store(2) // f's keyframe came
	d.setHint(640, 360)
	r.selectLayer(d, 5_000_000)
	if got := d.target.Load(); got != 1 {
		t.Fatalf("target %d for a 640×360 tile, want 1", got)
	}
	r.pub.updateTrackLayers(r.up, r.now)
	r.wantMessage()
	r.tick(5 * time.Second)
	r.wantNoMessage() // f is still forwarded: no keyframe of h yet
	d.current.Store(1)
	r.tick(pauseGrace)
	r.wantNoMessage()
	r.tick(allocInterval)
	r.wantMessage("f")
}

// TestPausedLayerSelection: a layer paused by the SFU is selectable with
// its last bitrate; one its publisher stopped by itself is gone, as
// before, and the SFU does not pause it (that would keep it off when the
// publisher could send it again).
func TestPausedLayerSelection(t *testing.T) {
	r := newPauseRig(t, []string{"q", "h", "f"})
	r.up.layer(1).paused.Store(true)
	r.now += int64(5 * time.Second)
	r.up.layer(0).lastPacket.Store(r.now)
	r.up.layer(1).lastPacket.Store(r.now - int64(5*time.Second))
	r.up.layer(2).lastPacket.Store(r.now - int64(5*time.Second)) // stopped by the publisher
	d := r.subscribe(token.RoleProvider)
	r.selectLayer(d, 5_000_000)
	if got := d.target.Load(); got != 1 {
		t.Fatalf("target %d, want 1: f is gone, h is paused but selectable", got)
	}
	r.selectLayer(d, 400_000)
	if got := d.target.Load(); got != 0 {
		t.Fatalf("target %d for 400 kbit/s, want 0: h's last bitrate (500 kbit/s) does not fit", got)
	}
	if q := r.up.highestActiveAt(r.now); q != 1 {
		t.Fatalf("highestActive %d, want 1", q)
	}
	// The publisher's own stop is left alone, however long f is unwanted.
	r.up.layer(1).paused.Store(false)
	d.setTarget(0)
	d.current.Store(0)
	for range 20 {
		r.now += int64(allocInterval)
		r.up.layer(0).lastPacket.Store(r.now)
		r.up.layer(1).lastPacket.Store(r.now)
		r.pub.updateTrackLayers(r.up, r.now)
	}
	if r.up.layer(2).paused.Load() {
		t.Fatal("a layer its publisher stopped was paused")
	}
	r.wantMessage("h") // h, unwanted and flowing, is paused
}

// TestPauseNewSubscribers: with every layer paused (nobody watching), a
// new subscriber's first layer, a recorder's best layer and a probe's
// layer are resumed at once.
func TestPauseNewSubscribers(t *testing.T) {
	r := newPauseRig(t, []string{"q", "h", "f"})
	r.tick(pauseGrace + allocInterval)
	r.wantMessage("q", "h", "f") // no subscriber at all

	d := r.subscribe(token.RolePatient)
	if got := d.target.Load(); got != 0 {
		t.Fatalf("new subscriber's target %d, want 0", got)
	}
	if !r.woken() {
		t.Fatal("a new subscriber of a paused layer did not wake the publisher's allocator")
	}
	r.pub.updateTrackLayers(r.up, r.now)
	r.wantMessage("h", "f")

	// A probe one layer up, to a paused layer.
	d.current.Store(0)
	d.nextProbe = 0
	r.selectLayer(d, 200_000)
	if got := d.target.Load(); got != 1 || !d.probing {
		t.Fatalf("target %d probing %v, want a probe of the paused layer 1", got, d.probing)
	}
	if !r.woken() {
		t.Fatal("a probe of a paused layer did not wake the publisher's allocator")
	}
	r.pub.updateTrackLayers(r.up, r.now)
	r.wantMessage("f")

	// A recorder starts on the best layer that is sending (h, the probe's)
	// rather than wait for the paused best one, which is resumed, and
	// moves up once that one sends.
	r.tick(allocInterval) // h's first packets since its resume
	rec := r.subscribe(token.RoleRecorder)
	r.selectLayer(rec, 0) // the rig's clock, which newDownTrack cannot see
	if got := rec.target.Load(); got != 1 {
		t.Fatalf("recorder's target %d, want 1 (the best sending)", got)
	}
	if !r.woken() {
		t.Fatal("a recorder did not wake the publisher's allocator for the paused best layer")
	}
	r.pub.updateTrackLayers(r.up, r.now)
	r.wantMessage()
	r.selectLayer(rec, 0)
	if got := rec.target.Load(); got != 1 {
		t.Fatalf("recorder's target %d before f sends, want 1", got)
	}
	r.tick(allocInterval) // f's first packets
	r.selectLayer(rec, 0)
	if got := rec.target.Load(); got != 2 {
		t.Fatalf("recorder's target %d once f sends, want 2", got)
	}
	// Nobody else watches f, yet the recorder keeps it resumed.
	d.target.Store(0)
	d.current.Store(0)
	r.tick(3 * pauseGrace)
	r.wantMessage("h")

	r.recorderFollowsDroppedLayer(rec)

	// Unpublished: nothing more is paused or said.
	r.up.removeDown(d)
	r.up.removeDown(rec)
	r.up.closed.Store(true)
	r.tick(2 * pauseGrace)
	r.wantNoMessage()
}

// TestNoPauseWithoutSimulcast: audio and video without RIDs are never
// paused, watched or not.
func TestNoPauseWithoutSimulcast(t *testing.T) {
	r := newPauseRig(t, []string{""})
	r.tick(3 * pauseGrace)
	r.wantNoMessage()
	r.up.kind = webrtc.RTPCodecTypeAudio
	r.up.layer(0).rid = "q"
	r.tick(3 * pauseGrace)
	r.wantNoMessage()
	if r.up.layer(0).paused.Load() {
		t.Fatal("paused")
	}
}

// simulcastPublisher joins visit as a Pion client that publishes one
// simulcast video track (RIDs q, h, f; every packet a VP8 keyframe of the
// layer's width) and, like a browser, stops sending the RIDs a layers
// message names. Its read loop is the test client's: layers messages
// arrive on c.msgs.
func simulcastPublisher(t *testing.T, env *testEnv, visit ids.VisitID) (c *client, mid string, obey func(paused []string)) {
	t.Helper()
	c = joinedClient(t, env, visit, webrtc.Configuration{}, nil)
	pc := c.pc
	var err error
	rids := []string{"q", "h", "f"}
	tracks := make([]*webrtc.TrackLocalStaticRTP, len(rids))
	for i, rid := range rids {
		if tracks[i], err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8},
			"video", "cam", webrtc.WithRTPStreamID(rid)); err != nil {
			t.Fatal(err)
		}
	}
	sender, err := pc.AddTrack(tracks[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range tracks[1:] {
		if err := sender.AddEncoding(tr); err != nil {
			t.Fatal(err)
		}
	}
	var midExt, ridExt uint8
	for _, e := range sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midExt = uint8(e.ID) //nolint:gosec // 1..14
		case sdp.SDESRTPStreamIDURI:
			ridExt = uint8(e.ID) //nolint:gosec // 1..14
		}
	}
	c.offer()
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid() // set by the offer
		}
	}

	var paused [maxLayers]atomic.Bool
	obey = func(ps []string) {
		for q, rid := range rids {
			paused[q].Store(slices.Contains(ps, rid))
		}
	}
	c.start()
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		tick := time.NewTicker(30 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			for q, tr := range tracks {
				if paused[q].Load() {
					continue
				}
				w := 320 << q
				payload := []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, byte(w), byte(w >> 8), 0xb4, 0x00, 0, 0, 0}
				p := rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: uint32(seq) * 2700}, Payload: payload}
				_ = p.Header.SetExtension(midExt, []byte(mid))
				_ = p.Header.SetExtension(ridExt, []byte(tr.RID()))
				_ = tr.WriteRTP(&p)
			}
		}
	}()
	return c, mid, obey
}

// nextLayers waits for the next layers message on c (other messages are
// skipped) and returns its mid and paused RIDs.
func nextLayers(t *testing.T, c *client, within time.Duration) (string, []string) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				t.Fatal("the publisher's socket closed")
			}
			if m.Type != protocol.TypeLayers {
				continue
			}
			if m.Paused == nil {
				t.Fatalf("layers message %+v: paused is not an array", m)
			}
			return m.Mid, m.Paused
		case <-timeout:
			t.Fatalf("no layers message within %v", within)
		}
	}
}

// TestLayersOverSocket: through the real signaling and media path, a
// subscriber that hints 0×0 gets every layer of a simulcast publisher
// paused, the publisher told in a layers message naming its own mid; a
// hint of a large size resumes a layer at once, and video flows again.
func TestLayersOverSocket(t *testing.T) {
	env := newTestEnv(t)
	visit := ids.NewVisitID()
	pub, mid, obey := simulcastPublisher(t, env, visit)
	defer pub.leave()
	sub := newClient(t, env, visit)
	defer sub.leave()
	waitFor(t, "the subscriber receives the simulcast video", func() bool { return sub.received(pub.id, "video") > 10 })
	var trackID string
	for _, tr := range sub.pc.GetTransceivers() {
		if r := tr.Receiver(); r != nil && r.Track() != nil && r.Track().StreamID() == string(pub.id) && r.Track().Kind() == webrtc.RTPCodecTypeVideo {
			trackID = r.Track().ID()
		}
	}
	if trackID == "" {
		t.Fatal("the subscriber has no video track of the publisher")
	}

	sub.send(protocol.LayerHint(trackID, 0, 0))
	var paused []string
	for len(paused) < 3 { // earlier messages may pause the layers not taken
		var got string
		got, paused = nextLayers(t, pub, 10*time.Second)
		if got != mid {
			t.Fatalf("layers message for mid %q, want the publisher's %q", got, mid)
		}
		obey(paused)
	}
	if !slices.Equal(paused, []string{"q", "h", "f"}) {
		t.Fatalf("paused %q, want q, h, f", paused)
	}
	// Sent on change only: nothing more while nothing changes.
	select {
	case m := <-pub.msgs:
		if m.Type == protocol.TypeLayers {
			t.Fatalf("a repeated layers message %+v", m)
		}
	case <-time.After(pauseGrace):
	}

	before := sub.received(pub.id, "video")
	hinted := time.Now()
	sub.send(protocol.LayerHint(trackID, 1280, 720))
	_, paused = nextLayers(t, pub, 10*time.Second)
	t.Logf("resumed after %v: paused %q", time.Since(hinted).Round(time.Millisecond), paused)
	if len(paused) == 3 {
		t.Fatalf("paused %q after a 1280×720 hint, want a layer resumed", paused)
	}
	obey(paused)
	waitFor(t, "video flows again", func() bool { return sub.received(pub.id, "video") > before+10 })
}

// recorderFollowsDroppedLayer: the publisher drops f by itself (a browser
// short of CPU does): the recorder rec, on f, stays on it for layerIdle,
// then moves down to the best layer still sent rather than record no
// video, and back up once f sends again.
func (r *pauseRig) recorderFollowsDroppedLayer(rec *downTrack) {
	r.t.Helper()
	r.up.layer(2).lastPacket.Store(r.now)
	for range int(layerIdle / allocInterval) {
		r.now += int64(allocInterval)
		r.up.layer(0).lastPacket.Store(r.now)
		r.selectLayer(rec, 0)
		if got := rec.target.Load(); got != 2 {
			r.t.Fatalf("recorder's target %d within layerIdle of f's last packet, want 2", got)
		}
	}
	r.now += int64(allocInterval)
	r.up.layer(0).lastPacket.Store(r.now)
	r.selectLayer(rec, 0)
	if got := rec.target.Load(); got != 0 {
		r.t.Fatalf("recorder's target %d once f stopped, want 0 (the best still sent)", got)
	}
	r.tick(allocInterval)
	r.selectLayer(rec, 0)
	if got := rec.target.Load(); got != 2 {
		r.t.Fatalf("recorder's target %d once f sends again, want 2", got)
	}
	r.wantNoMessage()
}
