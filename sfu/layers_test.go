package sfu

import (
	"log/slog"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// newLayeredTrack is a video upTrack with layers of the given bitrates
// (bits/s) and widths, all active, and a subscriber's downTrack on it.
func newLayeredTrack(t *testing.T, rates []int64, widths []int32) *downTrack {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	log := slog.New(slog.DiscardHandler)
	up := &upTrack{owner: &participant{id: "pub", log: log, pc: pc}, id: "video-1", kind: webrtc.RTPCodecTypeVideo,
		ck: codecVP8, start: time.Now().Add(-time.Minute)}
	now := int64(time.Since(up.start))
	for q, r := range rates {
		l := &layer{up: up, q: q, ssrc: uint32(100 + q)}
		l.bitrate.Store(r)
		l.width.Store(widths[q])
		l.height.Store(widths[q] * 9 / 16)
		l.lastPacket.Store(now)
		up.layers[q].Store(l)
	}
	return newDownTrack(up, &participant{id: "sub", log: log})
}

func TestSelectLayer(t *testing.T) {
	rates := []int64{150_000, 500_000, 1_500_000}
	widths := []int32{320, 640, 1280}
	for _, c := range []struct {
		name      string
		budget    int64
		hint      [2]int // 0,0 with hinted=false: no hint
		hinted    bool
		want      int32
		congested bool
	}{
		{"plenty", 5_000_000, [2]int{}, false, 2, false},
		{"middle", 1_000_000, [2]int{}, false, 1, false},
		{"starved: the lowest anyway", 10_000, [2]int{}, false, 0, false},
		{"hint caps a rich subscriber", 5_000_000, [2]int{320, 180}, true, 0, false},
		{"hint between layers takes the larger", 5_000_000, [2]int{500, 281}, true, 1, false},
		{"not shown: paused", 5_000_000, [2]int{0, 0}, true, -1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newLayeredTrack(t, rates, widths)
			d.nextProbe = 1 << 62 // no probing here
			if c.hinted {
				d.setHint(c.hint[0], c.hint[1])
			}
			d.selectLayer(c.budget, false, c.congested)
			if got := d.target.Load(); got != c.want {
				t.Fatalf("target %d, want %d", got, c.want)
			}
		})
	}
}

// TestSelectLayerProbe: without congestion the allocator tries one layer up
// and holds it; congestion ends the try and backs off.
func TestSelectLayerProbe(t *testing.T) {
	d := newLayeredTrack(t, []int64{150_000, 500_000, 1_500_000}, []int32{320, 640, 1280})
	d.selectLayer(200_000, false, false) // fits layer 0; probes layer 1
	if got := d.target.Load(); got != 1 || !d.probing {
		t.Fatalf("target %d probing %v, want a probe of layer 1", got, d.probing)
	}
	d.selectLayer(200_000, false, false) // held while probing
	if got := d.target.Load(); got != 1 {
		t.Fatalf("target %d during the probe, want 1", got)
	}
	d.selectLayer(200_000, false, true) // congestion: back to what fits
	if got := d.target.Load(); got != 0 || d.probing || d.probeBackoff != 2*probeBackoffMin {
		t.Fatalf("target %d probing %v backoff %v, want 0, false, doubled", got, d.probing, d.probeBackoff)
	}
	d.selectLayer(200_000, false, false) // within the backoff: no new probe
	if got := d.target.Load(); got != 0 {
		t.Fatalf("target %d right after a failed probe, want 0", got)
	}
	// Under a cap below the next layer, no probe at all.
	d2 := newLayeredTrack(t, []int64{150_000, 500_000, 1_500_000}, []int32{320, 640, 1280})
	d2.selectLayer(200_000, true, false)
	if got := d2.target.Load(); got != 0 || d2.probing {
		t.Fatalf("capped: target %d probing %v, want 0 and no probe", got, d2.probing)
	}
}
