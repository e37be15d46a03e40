package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// fakeBinding is a subscriber's sender as TrackLocalStaticRTP sees it,
// writing into nothing.
type fakeBinding struct {
	id   string
	ssrc webrtc.SSRC
}

func (f fakeBinding) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		PayloadType:        96,
	}}
}
func (f fakeBinding) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (f fakeBinding) SSRC() webrtc.SSRC                                      { return f.ssrc }
func (f fakeBinding) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (f fakeBinding) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (f fakeBinding) WriteStream() webrtc.TrackLocalWriter                   { return discard{} }
func (f fakeBinding) ID() string                                             { return f.id }
func (f fakeBinding) RTCPReader() interceptor.RTCPReader                     { return nil }

type discard struct{}

func (discard) WriteRTP(h *rtp.Header, p []byte) (int, error) { return len(p), nil }
func (discard) Write(b []byte) (int, error)                   { return len(b), nil }

// newBenchTrack returns an audio upTrack (no keyframe requests) bound to n
// fake subscribers, and one marshalled RTP packet with a header extension.
func newBenchTrack(tb testing.TB, n int) (*upTrack, []byte) {
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video-1", "p")
	if err != nil {
		tb.Fatal(err)
	}
	t := &upTrack{}
	t.local = &downTrack{TrackLocalStaticRTP: local, up: t}
	for i := range n {
		if _, err := t.local.Bind(fakeBinding{id: string(rune('a' + i)), ssrc: webrtc.SSRC(1000 + i)}); err != nil {
			tb.Fatal(err)
		}
	}
	pkt := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 100, SequenceNumber: 1, Timestamp: 3000, SSRC: 42},
		Payload: make([]byte, 1100),
	}
	if err := pkt.Header.SetExtension(3, []byte{1, 2}); err != nil {
		tb.Fatal(err)
	}
	b, err := pkt.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return t, b
}

// TestForwardAllocs guards the hot path: forwarding a packet to three
// subscribers allocates nothing in steady state.
func TestForwardAllocs(t *testing.T) {
	up, b := newBenchTrack(t, 3)
	var pkt rtp.Packet
	var c forwardCounters
	up.forwardPacket(&pkt, b, &c) // warm the reused packet
	allocs := testing.AllocsPerRun(1000, func() { up.forwardPacket(&pkt, b, &c) })
	if allocs != 0 {
		t.Fatalf("forwardPacket allocates %.1f times per packet", allocs)
	}
	if got := c.packets.Load(); got != 3*1002 { // AllocsPerRun adds one warm-up run
		t.Fatalf("counted %d packets, want %d", got, 3*1002)
	}
}

func BenchmarkForward(b *testing.B) {
	up, buf := newBenchTrack(b, 3)
	var pkt rtp.Packet
	var c forwardCounters
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		up.forwardPacket(&pkt, buf, &c)
	}
}
