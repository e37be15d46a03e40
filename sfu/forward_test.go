package sfu

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/sfu/srtpkeys"
)

// forwardRig is the SFU's media path on loopback, made of the SFU's own
// parts: a publisher (a PeerConnection of the SFU's API sending through a
// downTrack) → the SFU's ingress PeerConnection, whose layer read loop
// (layer.forward) fans out → n subscriber downTracks, each bound to an
// RTPSender of its own PeerConnection (interceptors: sendPrep, GCC when on,
// TWCC, NACK, reports; DTLS-SRTP; the ICE UDP mux) → a plain Pion peer
// that counts what arrives.
type forwardRig struct {
	src      *layer // the publisher's side: its downTrack sends to the SFU
	srcDown  *downTrack
	egress   *layer // the SFU's layer, fed by its read loop
	downs    []*downTrack
	received []*atomic.Int64
	pkt      []byte
	seq      uint16
	parsed   rtp.Packet    // reused, as the read loop reuses it
	arrived  chan struct{} // a peer received a packet
	timer    *time.Timer
}

// newFakeUp makes an upTrack with one layer, owned by a participant whose
// PeerConnection is pc (keyframe requests go there).
func newFakeUp(env *testEnv, id ids.ParticipantID, pc *webrtc.PeerConnection, tb testing.TB) (*upTrack, *layer) {
	owner := &participant{sfu: env.sfu, id: id, log: testLogger(tb), pc: pc}
	up := &upTrack{
		owner: owner, id: "video-" + string(id), kind: webrtc.RTPCodecTypeVideo,
		codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		ck:    codecVP8, absID: 5, start: time.Now(),
	}
	empty := []*downTrack{}
	up.downs.Store(&empty)
	l := &layer{up: up, q: 0, ssrc: 42}
	up.layers[0].Store(l)
	return up, l
}

// bindDown subscribes a new participant on pc to up through a downTrack.
func bindDown(env *testEnv, up *upTrack, pc *webrtc.PeerConnection, bwe cc.BandwidthEstimator, prep *sendPrep, name string, tb testing.TB) *downTrack {
	sub := &participant{sfu: env.sfu, id: ids.ParticipantID(name), log: testLogger(tb), pc: pc, bwe: bwe, prep: prep}
	tb.Cleanup(func() {
		_ = pc.Close()
		sub.goMu.Lock()
		sub.goClosed = true
		sub.goMu.Unlock()
		sub.wg.Wait()
	})
	d := newDownTrack(up, sub)
	tr, err := pc.AddTransceiverFromTrack(d, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		tb.Fatal(err)
	}
	d.sender = tr.Sender()
	up.addDown(d)
	sub.startGoroutine()
	go func() { defer sub.wg.Done(); d.readRTCP(d.sender) }()
	return d
}

func newForwardRig(tb testing.TB, n int, withBWE bool, opts ...func(*Params)) *forwardRig {
	tb.Helper()
	env := newTestEnv(tb, append([]func(*Params){func(p *Params) { p.NoBandwidthEstimation = !withBWE }}, opts...)...)
	rig := &forwardRig{arrived: make(chan struct{}, 64), timer: time.NewTimer(time.Hour)}

	// A VP8 keyframe payload (descriptor, frame tag, start code, 1280×720)
	// with an abs-capture-time extension, as a browser would send.
	payload := make([]byte, 1100)
	copy(payload, []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02})
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 100, SequenceNumber: 1, Timestamp: 3000, SSRC: 42}, Payload: payload}
	if err := p.Header.SetExtension(5, make([]byte, 8)); err != nil {
		tb.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	rig.pkt = b

	// Publisher → ingress. The publisher is another node's PeerConnection:
	// two peers on one UDP mux cannot tell each other's packets apart.
	pubEnv := newTestEnv(tb, func(p *Params) { p.NoBandwidthEstimation = true })
	pubPC, _, _, err := pubEnv.sfu.newPeerConnection(&srtpkeys.Handshake{}, pubEnv.sfu.workers[0])
	if err != nil {
		tb.Fatal(err)
	}
	ingress, _, _, err := env.sfu.newPeerConnection(&srtpkeys.Handshake{}, env.sfu.workers[0])
	if err != nil {
		tb.Fatal(err)
	}
	srcUp, src := newFakeUp(env, "pub", ingress, tb)
	rig.src = src
	rig.srcDown = bindDown(pubEnv, srcUp, pubPC, nil, nil, "pub-out", tb)
	egressCh := make(chan *layer, 1)
	ingressOwner := &participant{sfu: env.sfu, id: "pub", log: testLogger(tb), pc: ingress}
	var loops sync.WaitGroup
	tb.Cleanup(func() { _ = ingress.Close(); loops.Wait() })
	ingress.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		up := newUpTrack(ingressOwner, remote, recv, "video-in")
		l := up.addLayer(remote)
		egressCh <- l
		loops.Add(1)
		defer loops.Done()
		l.forward()
	})
	connect(tb, pubPC, ingress)
	deadline := time.Now().Add(20 * time.Second)
	for rig.egress == nil {
		rig.sendSource()
		select {
		case rig.egress = <-egressCh:
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatal("the SFU's ingress got no track")
		}
	}

	// Ingress → subscribers.
	for i := range n {
		pc, bwe, prep, err := env.sfu.newPeerConnection(&srtpkeys.Handshake{}, env.sfu.workers[0])
		if err != nil {
			tb.Fatal(err)
		}
		if withBWE {
			prep.bwe.Store(true) // as when a subscriber has layers to choose from
		}
		rig.downs = append(rig.downs, bindDown(env, rig.egress.up, pc, bwe, prep, fmt.Sprintf("sub-%d", i), tb))
		rig.received = append(rig.received, connectPeer(tb, pc, rig.arrived))
	}
	return rig
}

// connect runs one offer/answer between two PeerConnections (no trickle)
// and waits until they are connected.
func connect(tb testing.TB, offerer, answerer *webrtc.PeerConnection) {
	tb.Helper()
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	<-gathered
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		tb.Fatal(err)
	}
	<-gathered
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for offerer.ConnectionState() != webrtc.PeerConnectionStateConnected {
		if time.Now().After(deadline) {
			tb.Fatalf("peer connection: %s", offerer.ConnectionState())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendSource has the publisher send the next packet to the SFU.
func (r *forwardRig) sendSource() {
	r.seq++
	binary.BigEndian.PutUint16(r.pkt[2:], r.seq)
	binary.BigEndian.PutUint32(r.pkt[4:], uint32(r.seq)*3000)
	var c forwardCounters
	r.src.forwardPacket(&r.parsed, r.pkt, &c)
	r.srcDown.drain()
}

// connectPeer answers pc's offer with a plain Pion peer on loopback, waits
// for the connection and counts the RTP it receives.
func connectPeer(tb testing.TB, pc *webrtc.PeerConnection, arrived chan<- struct{}) *atomic.Int64 {
	tb.Helper()
	var se webrtc.SettingEngine
	loopbackOnly(&se)
	// No interceptors: the peer's own reading must not count against the
	// SFU's allocations.
	peer, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{})).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = peer.Close() })
	got := &atomic.Int64{}
	peer.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			got.Add(1)
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	})
	connect(tb, pc, peer)
	return got
}

// step forwards one packet (the next sequence number) from the SFU's layer
// and writes it to every subscriber before returning (the write path alone).
func (r *forwardRig) step(c *forwardCounters) {
	r.seq++
	binary.BigEndian.PutUint16(r.pkt[2:], r.seq)
	binary.BigEndian.PutUint32(r.pkt[4:], uint32(r.seq)*3000)
	r.egress.mu.Lock() // as both callers of forwardPacket do
	r.egress.forwardPacket(&r.parsed, r.pkt, c)
	r.egress.mu.Unlock()
	for _, d := range r.downs {
		d.drain()
	}
}

// waitDelivered waits until every subscriber has received some packets, so
// that the path measured is the steady state (DTLS up, senders bound).
func (r *forwardRig) waitDelivered(tb testing.TB, c *forwardCounters) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.step(c)
		ok := true
		for _, n := range r.received {
			ok = ok && n.Load() > 10
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("subscribers receive nothing")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestForwardingAllocsZero: reading a packet (SRTP decryption, as the
// receive fast path does), fanning it out to three subscribers (parse,
// layer filter, rewrite, queue) and writing it (SRTP encryption) allocate
// nothing per packet, whether the read loop writes inline or the writer
// drains the queue. It counts on a fixed batch in process (batchRig): no
// sockets and no Pion goroutines run, so the count does not depend on what
// else the machine does (the sockets' calls are checked in sfu/udp).
func TestForwardingAllocsZero(t *testing.T) {
	skipUnderRace(t)
	for _, inline := range []bool{false, true} {
		name := map[bool]string{false: "queued write", true: "inline write"}[inline]
		t.Run(name, func(t *testing.T) {
			r := newBatchRig(t, batchOpts{subs: 3, inline: inline}, &forwardCounters{})
			r.step() // the first packets start the streams (SRTP state, rebasing)
			failed := 0
			allocs, trials := steadyAllocs(50, func() { failed += r.step() })
			if allocs != 0 {
				t.Errorf("read, fan-out and write allocate %.1f times per packet", allocs/batchSize)
			}
			// AllocsPerRun adds one warm-up run to each trial.
			if want := 3 * batchSize * (1 + 51*trials); failed != 0 || r.written() != want {
				t.Errorf("wrote %d packets with %d failed reads, want %d and none", r.written(), failed, want)
			}
			for i, d := range r.downs {
				if d.current.Load() != 0 {
					t.Errorf("subscriber %d forwards layer %d, want 0", i, d.current.Load())
				}
			}
		})
	}
}

// TestForwardingAllocsGCC pins what pion's GCC costs on the same path: its
// feedback history allocates per packet sent (a list element and the boxed
// acknowledgment), nothing else does.
func TestForwardingAllocsGCC(t *testing.T) {
	skipUnderRace(t)
	r := newBatchRig(t, batchOpts{subs: 1, inline: true, gcc: true}, &forwardCounters{})
	r.step()
	allocs, _ := steadyAllocs(50, func() { r.step() })
	perPacket := allocs / batchSize
	if perPacket > 2 {
		t.Fatalf("with GCC, forwarding allocates %.1f times per packet, want at most 2", perPacket)
	}
	t.Logf("with GCC: %.1f allocations per packet per subscriber", perPacket)
}

// BenchmarkForward measures forwarding through the real write path; ns/op
// is per packet, for all subscribers (divide by subs for one).
func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			rig := newForwardRig(b, n, false)
			var c forwardCounters
			rig.waitDelivered(b, &c)
			b.ReportAllocs()
			b.SetBytes(int64(len(rig.pkt)))
			for b.Loop() {
				rig.step(&c)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pkt/sub")
		})
	}
}

// BenchmarkPush measures the fan-out step alone (parse, layer filter,
// rewrite, queue) without the write.
func BenchmarkPush(b *testing.B) {
	rig := newForwardRig(b, 1, false)
	var c forwardCounters
	rig.waitDelivered(b, &c)
	d := rig.downs[0]
	d.once.Do(func() { close(d.stop) }) // stop the writer; nothing is sent
	b.ReportAllocs()
	var pkt rtp.Packet
	for b.Loop() {
		rig.seq++
		binary.BigEndian.PutUint16(rig.pkt[2:], rig.seq)
		rig.egress.forwardPacket(&pkt, rig.pkt, &c)
		d.mu.Lock()
		d.head, d.count = 0, 0 // discard instead of writing
		d.mu.Unlock()
	}
}

// skipUnderRace skips an allocation test under -race.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
}

// steadyAllocs is the fewest allocations per run over a few trials of
// testing.AllocsPerRun. A per-packet allocation shows in every trial; what
// a busy machine adds now and then (a lagging reader's buffer growing, a
// background timer) does not, and is not what these tests are about.
// It also returns how many trials ran.
func steadyAllocs(runs int, f func()) (allocs float64, trials int) {
	allocs, trials = testing.AllocsPerRun(runs, f), 1
	for ; trials < 3 && allocs > 0; trials++ {
		allocs = min(allocs, testing.AllocsPerRun(runs, f))
	}
	return allocs, trials
}
