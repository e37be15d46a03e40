package sfu

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
)

// dropFirstSends drops the first transmission of every tenth video packet
// a client sends (wire side of its NACK responder, which keeps a copy and
// resends it over RTX when the SFU asks).
type dropFirstSends struct {
	interceptor.NoOp
	mu      sync.Mutex
	dropped map[uint16]bool
	rtx     int
	nacks   int
}

func (d *dropFirstSends) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if info.MimeType != webrtc.MimeTypeVP8 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC != info.SSRC {
			d.mu.Lock()
			d.rtx++
			d.mu.Unlock()
		}
		if h.SSRC == info.SSRC && h.SequenceNumber%10 == 5 {
			d.mu.Lock()
			first := !d.dropped[h.SequenceNumber]
			d.dropped[h.SequenceNumber] = true
			d.mu.Unlock()
			if first {
				return len(payload), nil
			}
		}
		return w.Write(h, payload, a)
	})
}

func (d *dropFirstSends) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err == nil {
			if pkts, perr := rtcp.Unmarshal(b[:n]); perr == nil {
				for _, p := range pkts {
					if _, ok := p.(*rtcp.TransportLayerNack); ok {
						d.mu.Lock()
						d.nacks++
						d.mu.Unlock()
					}
				}
			}
		}
		return n, a, err
	})
}

type dropFactory struct{ d *dropFirstSends }

func (f dropFactory) NewInterceptor(string) (interceptor.Interceptor, error) { return f.d, nil }

// TestPublisherRepairsOnFastPath: packets a publisher's uplink lost come
// back over RTX when the SFU NACKs them, and reach the subscriber. With the
// media stream on the receive fast path, the RTX stream must be on it too:
// Pion delivers repairs only to a track reader that Pion itself feeds.
func TestPublisherRepairsOnFastPath(t *testing.T) {
	env := newTestEnv(t)
	visit := ids.NewVisitID()
	a, drop := lossyPublisher(t, env, visit)
	b := newClient(t, env, visit)
	defer closeBoth(a, b)

	var mu sync.Mutex
	got := map[uint16]bool{}
	var newest uint16
	started := false
	f := func(tr *webrtc.TrackRemote, p *rtp.Packet) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo || tr.StreamID() != string(a.id) {
			return
		}
		mu.Lock()
		got[p.SequenceNumber] = true
		if !started || int16(p.SequenceNumber-newest) > 0 { //nolint:gosec // serial arithmetic
			newest, started = p.SequenceNumber, true
		}
		mu.Unlock()
	}
	b.onPacket.Store(&f)
	waitFor(t, "b receives a's video", func() bool { return b.received(a.id, "video") > 50 })
	fast := env.sfu.Stats().FastPathPackets
	// Enough losses to matter: how long that takes depends on how busy the
	// machine is, so wait for the count, not for a time.
	dropped := func() int {
		drop.mu.Lock()
		defer drop.mu.Unlock()
		return len(drop.dropped)
	}
	waitFor(t, "20 packets dropped at the publisher", func() bool { return dropped() >= 20 })
	if env.sfu.Stats().FastPathPackets == fast {
		t.Fatal("nothing took the fast path")
	}

	// Of the 100 numbers before the last half second, every one arrives:
	// the tenth that the uplink lost comes back over RTX.
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for i := uint16(25); i < 125; i++ {
			if !got[newest-i] {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for missing() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	drop.mu.Lock()
	nacks, rtx := drop.nacks, drop.rtx
	drop.mu.Unlock()
	if nacks == 0 || rtx == 0 {
		t.Fatalf("the publisher got %d NACKs and sent %d RTX packets, want some of each", nacks, rtx)
	}
	if n := missing(); n > 0 {
		t.Fatalf("%d of 100 sequence numbers never reached the subscriber (%d dropped at the publisher, repairs lost)", n, dropped())
	}
}

// lossyPublisher joins visit as a Pion client whose uplink loses the first
// transmission of every tenth video packet (drop counts what it did).
func lossyPublisher(t *testing.T, env *testEnv, visit ids.VisitID) (*client, *dropFirstSends) {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	drop := &dropFirstSends{dropped: map[uint16]bool{}}
	reg.Add(dropFactory{drop}) // wire side: registered first
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	a := newClientWith(t, env, visit, webrtc.Configuration{}, nil, webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg))
	// Pion's interceptors see RTCP (the SFU's NACKs) only when it is read.
	for _, s := range a.pc.GetSenders() {
		go func() {
			for {
				if _, _, err := s.ReadRTCP(); err != nil {
					return
				}
			}
		}()
	}
	return a, drop
}

// FuzzUnwrapRTX: whatever a peer's RTX packet holds, unwrapping never
// panics and, when it yields a packet, that packet is shorter by the two
// bytes of the original sequence number and carries the media SSRC.
func FuzzUnwrapRTX(f *testing.F) {
	f.Add([]byte{0x80, 97, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0x12, 0x34, 0xaa})
	f.Add([]byte{0x90, 97, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 0x12, 0x34, 0xaa})
	f.Add([]byte{0xaf, 97, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 12 {
			return
		}
		n := len(b)
		out := unwrapRTX(append([]byte{}, b...), 96, 42)
		if out == nil {
			return
		}
		if len(out) != n-2 || binary.BigEndian.Uint32(out[8:12]) != 42 || out[1]&0x7f != 96 {
			t.Fatalf("unwrapped %x from %x", out, b)
		}
	})
}

// closeBoth closes two clients' sockets, then the clients: each read loop
// ends at once, where closing a PeerConnection first would leave it to
// wait for the server, which notices a closed PeerConnection only when
// ICE fails seconds later (Pion does not report a peer's close_notify).
func closeBoth(a, b *client) {
	a.conn.Abort()
	b.conn.Abort()
	a.close()
	b.close()
}

// rtpPublisher joins visit as a Pion client with one VP8 track whose
// packets the test writes itself (every one a keyframe): send writes one
// with sequence number seq.
func rtpPublisher(t *testing.T, env *testEnv, visit ids.VisitID) (c *client, send func(seq uint16)) {
	t.Helper()
	c = joinedClient(t, env, visit, webrtc.Configuration{}, nil)
	pc := c.pc
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	c.offer()
	c.start()

	payload := []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00, 0, 0, 0}
	var ts uint32
	return c, func(seq uint16) {
		ts += 3000
		p := rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: ts}, Payload: payload}
		_ = track.WriteRTP(&p)
	}
}

// TestPionKeepsRolloverOnFastPath: a stream the fast path carried for
// more than 32k packets, across a sequence number wrap, still decrypts in
// Pion once it leaves the fast path (as when ICE moves to TCP), because
// one packet in pionSyncEvery went through Pion and kept Pion's rollover
// counter right.
func TestPionKeepsRolloverOnFastPath(t *testing.T) {
	env := newTestEnv(t)
	visit := ids.NewVisitID()
	a, send := rtpPublisher(t, env, visit)
	b := newClient(t, env, visit)
	defer closeBoth(a, b)

	seq := uint16(65536 - 300) // wraps early in the run below
	waitFor(t, "b receives a's video", func() bool {
		send(seq)
		seq++
		return b.received(a.id, "video") > 10
	})
	fast := env.sfu.Stats().FastPathPackets
	const run = 42000
	for i := 0; i < run; i++ {
		send(seq)
		seq++
		if i%50 == 49 {
			time.Sleep(time.Millisecond) // small bursts: no socket buffer overflows
		}
	}
	waitFor(t, "the fast path took the run", func() bool {
		return env.sfu.Stats().FastPathPackets-fast > 34000 // > 32k: Pion's guess window
	})

	env.sfu.mu.Lock()
	p := env.sfu.rooms[visit].participants[a.id]
	env.sfu.mu.Unlock()
	p.worker.fast.removePeer(p)
	before := b.received(a.id, "video")
	for i := 0; i < 300; i++ {
		send(seq)
		seq++
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, "a's video reaches b through Pion after leaving the fast path", func() bool {
		return b.received(a.id, "video") > before+200
	})
}
