package loadtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted on purpose
	}
	for _, c := range []struct {
		name string
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 0.50, 50 * time.Millisecond},
		{"p95 of 1..100", ms(hundred...), 0.95, 95 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p100 of 1..100", ms(hundred...), 1, 100 * time.Millisecond},
		{"p99 of 3 is the largest", ms(30, 10, 20), 0.99, 30 * time.Millisecond},
		{"p50 of 4 is the second", ms(40, 10, 30, 20), 0.50, 20 * time.Millisecond},
	} {
		if got := percentile(c.in, c.q); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// vp8 builds a VP8 RTP payload: the descriptor (with a 15-bit picture ID)
// and a frame tag byte.
func vp8(start, key bool) []byte {
	d := byte(0x80) // X
	if start {
		d |= 0x10 // S, partition 0
	}
	tag := byte(0x01) // P set: interframe
	if key {
		tag = 0x00
	}
	return []byte{d, 0x80, 0x81, 0x23, tag, 0x9d}
}

func TestVP8KeyframeStart(t *testing.T) {
	for _, c := range []struct {
		name string
		p    []byte
		want bool
	}{
		{"keyframe start", vp8(true, true), true},
		{"interframe start", vp8(true, false), false},
		{"keyframe continuation", vp8(false, true), false},
		{"no extension, keyframe", []byte{0x10, 0x00}, true},
		{"7-bit picture ID", []byte{0x90, 0x80, 0x05, 0x00}, true},
		{"L, T and K bytes", []byte{0x90, 0xf0, 0x85, 0x01, 0x02, 0x03, 0x00}, true},
		{"partition 1", []byte{0x11, 0x00}, false},
		{"truncated", []byte{0x90, 0x80}, false},
		{"empty", nil, false},
	} {
		if got := vp8KeyframeStart(c.p); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFirstFrameNeedsAWholeKeyframe(t *testing.T) {
	type pkt struct {
		seq         uint16
		marker      bool
		payload     []byte
		wantsDone   bool
		description string
	}
	for _, c := range []struct {
		name string
		pkts []pkt
	}{
		{"interframes before the keyframe do not count", []pkt{
			{10, true, vp8(true, false), false, "interframe"},
			{11, false, vp8(true, true), false, "keyframe start"},
			{12, false, vp8(false, true), false, "middle"},
			{13, true, vp8(false, true), true, "keyframe end"},
			{14, true, vp8(true, true), false, "after done"},
		}},
		{"a gap waits for the next keyframe", []pkt{
			{100, false, vp8(true, true), false, "keyframe start"},
			{102, true, vp8(false, true), false, "end after a gap"},
			{103, true, vp8(true, false), false, "interframe"},
			{104, false, vp8(true, true), false, "next keyframe"},
			{105, true, vp8(false, true), true, "its end"},
		}},
		{"a one-packet keyframe across the sequence wrap", []pkt{
			{65535, false, vp8(true, true), false, "start"},
			{0, true, vp8(false, true), true, "end, wrapped"},
		}},
	} {
		var f firstFrame
		for _, p := range c.pkts {
			if got := f.observe(p.seq, p.marker, p.payload); got != p.wantsDone {
				t.Errorf("%s: %s (seq %d): done %v, want %v", c.name, p.description, p.seq, got, p.wantsDone)
			}
		}
	}
}

func FuzzVP8KeyframeStart(f *testing.F) {
	f.Add(vp8(true, true))
	f.Add([]byte{0x90, 0xf0, 0x85, 0x01, 0x02, 0x03, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = vp8KeyframeStart(b)
		var ff firstFrame
		ff.observe(1, true, b)
	})
}

func TestSweepStopRule(t *testing.T) {
	good := Report{Visits: 4, VisitsUp: 4, ReceivedPackets: 1000, Loss: 0.002, LatencyP99MS: 5}
	for _, c := range []struct {
		name string
		mod  func(*Report)
		want bool
	}{
		{"within limits", func(*Report) {}, true},
		{"loss at 1%", func(r *Report) { r.Loss = 0.01 }, false},
		{"loss just under 1%", func(r *Report) { r.Loss = 0.0099 }, true},
		{"p99 at 20 ms", func(r *Report) { r.LatencyP99MS = 20 }, false},
		{"a visit without media", func(r *Report) { r.VisitsUp = 3 }, false},
		{"nothing received", func(r *Report) { r.ReceivedPackets = 0 }, false},
	} {
		r := good
		c.mod(&r)
		if got := Holds(r); got != c.want {
			t.Errorf("%s: Holds = %v, want %v (why %q)", c.name, got, c.want, Why(r))
		}
	}

	// The sweep raises visits while runs hold and stops at the first that
	// does not; each GOMAXPROCS starts again from the lowest count.
	capacity := map[int]int{1: 8, 2: 16}
	var ran []string
	rows := Sweep(DefaultLimits, []int{1, 2}, []int{4, 8, 16, 32}, func(procs, visits int) (Report, error) {
		ran = append(ran, fmtRun(procs, visits))
		r := good
		r.Visits, r.VisitsUp = visits, visits
		r.ForwardedPPS, r.WindowSeconds = float64(100*visits), 1
		if visits > capacity[procs] {
			r.LatencyP99MS = 35
		}
		return r, nil
	}, nil)
	want := []string{"1x4", "1x8", "1x16", "2x4", "2x8", "2x16", "2x32"}
	if len(ran) != len(want) {
		t.Fatalf("runs %v, want %v", ran, want)
	}
	for i := range want {
		if ran[i] != want[i] {
			t.Fatalf("runs %v, want %v", ran, want)
		}
	}
	if len(rows) != 2 || rows[0].MaxVisits != 8 || rows[0].FailedAt != 16 || rows[1].MaxVisits != 16 || rows[1].FailedAt != 32 {
		t.Fatalf("rows %+v: want 8 held (16 failed) at 1, 16 held (32 failed) at 2", rows)
	}
	if lax := (Limits{MaxLoss: 0.01, MaxP99MS: 50}); !lax.Holds(Report{Visits: 1, VisitsUp: 1, ReceivedPackets: 1, LatencyP99MS: 35}) {
		t.Error("a 35 ms p99 does not hold under a 50 ms limit")
	}
	if rows[1].PPS != 1600 {
		t.Errorf("row 2 packets/s %v, want the held run's 1600", rows[1].PPS)
	}
}

func fmtRun(procs, visits int) string { return fmt.Sprintf("%dx%d", procs, visits) }

func TestNextKeyLoops(t *testing.T) {
	frames := []preFrame{{key: true}, {}, {}, {key: true}, {}}
	for i, want := range []int{0, 3, 3, 3, 0} {
		if got := nextKey(frames, i); got != want {
			t.Errorf("nextKey from %d = %d, want %d", i, got, want)
		}
	}
	if got := nextKey([]preFrame{{}, {}}, 1); got != 1 {
		t.Errorf("no keyframe: nextKey = %d, want 1", got)
	}
}

func TestPreClipMarksKeyframes(t *testing.T) {
	v, err := loadVideo()
	if err != nil {
		t.Fatal(err)
	}
	pre := preClip(v, &codecs.VP8Payloader{EnablePictureID: true})
	keys := 0
	for i, f := range pre {
		if f.key {
			keys++
			if !vp8KeyframeStart(f.payloads[0]) {
				t.Errorf("frame %d: marked a keyframe, but its first packet does not start one", i)
			}
		}
		if f.ticks != 3000 || len(f.payloads) == 0 {
			t.Errorf("frame %d: %d ticks, %d packets; want 3000 (30 fps at 90 kHz) and some", i, f.ticks, len(f.payloads))
		}
	}
	if keys == 0 {
		t.Error("the clip has no keyframe")
	}
}
