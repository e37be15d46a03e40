package recording

import (
	"bytes"
	"crypto/rand"
	mrand "math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/openvisit/openvisit/internal/loadtest"
	"github.com/openvisit/openvisit/recording/streamaead"
)

// memSink collects a chunk's ciphertext in memory.
type memSink struct {
	bytes.Buffer
	closed bool
}

func (m *memSink) Close() error { m.closed = true; return nil }

// fakeClock is a settable clock for the muxer.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// stream is a synthetic participant: 30 fps VP8 (a keyframe every 2 s,
// ~1.2 Mbit/s) and 20 ms Opus frames, as RTP packets in send order.
type stream struct {
	vp, ap *rtpPacketizer
}

type rtpPacketizer struct{ p rtp.Packetizer }

func newStream() *stream {
	return &stream{
		vp: &rtpPacketizer{rtp.NewPacketizer(1200, 96, 1111, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)},
		ap: &rtpPacketizer{rtp.NewPacketizer(1200, 111, 2222, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)},
	}
}

type timedPacket struct {
	at    time.Duration
	video bool
	pkt   *rtp.Packet
}

// packets returns d of media in arrival order.
func (s *stream) packets(d time.Duration) []timedPacket {
	var out []timedPacket
	frame := 0
	for t := time.Duration(0); t < d; t += 20 * time.Millisecond {
		for _, p := range s.ap.p.Packetize(make([]byte, 80), 960) {
			out = append(out, timedPacket{at: t, video: false, pkt: p})
		}
		// 30 fps: a video frame in two of every three 20 ms ticks (≈33 ms).
		for t >= time.Duration(frame)*time.Second/30 {
			key := frame%60 == 0
			size := 4500
			if key {
				size = 30000
			}
			for _, p := range s.vp.p.Packetize(loadtest.SyntheticVP8(key, size), 3000) {
				out = append(out, timedPacket{at: t, video: true, pkt: p})
			}
			frame++
		}
	}
	return out
}

func decryptAll(t testing.TB, ct []byte, key []byte, rec string) []byte {
	t.Helper()
	r, err := streamaead.NewReader(bytes.NewReader(ct), key, []byte(rec), streamaead.Params{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	return out.Bytes()
}

func newTestMuxer(t testing.TB, clk *fakeClock, chunk time.Duration) (*Muxer, *[]*memSink, []byte) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sinks := &[]*memSink{}
	m, err := NewMuxer(MuxParams{
		RecordingID: "3f1c9d2e-7b4a-4c8e-9f61-2d5e8a7b0c13", DataKey: key, SegmentSize: 64 << 10,
		ChunkDuration: chunk,
		NewChunk: func(int, time.Time) (ChunkSink, func(), error) {
			s := &memSink{}
			*sinks = append(*sinks, s)
			return s, nil, nil
		},
		Now: clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, sinks, key
}

func TestMuxerRoundTrip(t *testing.T) {
	tests := []muxCase{
		{"in order", false, 0, time.Hour, 1, 95},
		{"reordered", true, 0, time.Hour, 1, 95},
		// Loss without a publisher that answers PLI: video waits for the
		// next scheduled keyframe; the check is that nothing breaks.
		{"lossy", true, 97, time.Hour, 1, 5},
		{"rotating", false, 0, 4 * time.Second, 3, 90},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, sinks, key := muxStream(t, tc)
			if len(*sinks) != tc.wantChunks {
				t.Fatalf("%d chunks, want %d", len(*sinks), tc.wantChunks)
			}
			video, audio, span := inspectChunks(t, *sinks, key)
			if video < 300*tc.minVideoPct/100 {
				t.Errorf("%d video frames, want ≥ %d%% of 300", video, tc.minVideoPct)
			}
			if tc.lossEvery > 0 {
				if audio < 300 {
					t.Errorf("%d audio frames under loss", audio)
				}
				return
			}
			if audio < 450 {
				t.Errorf("%d audio frames, want ≥ 450 of 500", audio)
			}
			if span < 9000 || span > 10500 {
				t.Errorf("media spans %d ms, want ≈ 10 s", span)
			}
			t.Logf("video %d audio %d dropped %d span %d ms", video, audio, m.DroppedFrames, span)
		})
	}
}

// muxCase is one way of delivering 10 s of media to the muxer.
type muxCase struct {
	name        string
	reorder     bool
	lossEvery   int
	chunk       time.Duration
	wantChunks  int
	minVideoPct int
}

// muxStream pushes 10 s of media through a muxer as tc delivers it
// (reordered, lossy) on a fake clock, and closes it; it returns the muxer,
// the chunks it wrote and the data key.
func muxStream(t *testing.T, tc muxCase) (*Muxer, *[]*memSink, []byte) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	m, sinks, key := newTestMuxer(t, clk, tc.chunk)
	pkts := newStream().packets(10 * time.Second)
	if tc.reorder {
		// Swap neighbours now and then, as a network does.
		r := mrand.New(mrand.NewPCG(1, 2))
		for i := 1; i < len(pkts); i++ {
			if r.IntN(10) == 0 && pkts[i].video == pkts[i-1].video {
				pkts[i], pkts[i-1] = pkts[i-1], pkts[i]
			}
		}
	}
	start := clk.t
	for i, p := range pkts {
		if tc.lossEvery > 0 && i%tc.lossEvery == 5 {
			continue
		}
		clk.t = start.Add(p.at)
		m.Push(p.video, p.pkt)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return m, sinks, key
}

// inspectChunks checks that every chunk is closed, encrypted and parses,
// its video starting with a keyframe, and returns the video and audio
// frames of all chunks and the time their media spans.
func inspectChunks(t *testing.T, sinks []*memSink, key []byte) (video, audio int, span int64) {
	t.Helper()
	for i, s := range sinks {
		if !s.closed {
			t.Errorf("chunk %d not closed", i)
		}
		if bytes.Contains(s.Bytes(), []byte("webm")) {
			t.Errorf("chunk %d holds plaintext", i)
		}
		pt := decryptAll(t, s.Bytes(), key, "3f1c9d2e-7b4a-4c8e-9f61-2d5e8a7b0c13")
		in, err := InspectWebM(bytes.NewReader(pt))
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		v, _ := in.Track("V_VP8")
		a, _ := in.Track("A_OPUS")
		if v.Frames > 0 && v.Keyframes == 0 {
			t.Errorf("chunk %d: video without a keyframe", i)
		}
		video += v.Frames
		audio += a.Frames
		span += max(v.LastMS, a.LastMS) - min(v.FirstMS, a.FirstMS)
	}
	return video, audio, span
}

// TestMuxerKeepsLaggingVideo: video whose delivery falls behind the audio
// (its latency growing to 1.5 s over 10 s, as a loaded encoder's does) is
// still in the file: every frame the muxer counts is written.
func TestMuxerKeepsLaggingVideo(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	m, sinks, key := newTestMuxer(t, clk, time.Hour)
	pkts := newStream().packets(10 * time.Second)
	for i := range pkts {
		if pkts[i].video {
			pkts[i].at += pkts[i].at * 15 / 100
		}
	}
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].at < pkts[j].at })
	start := clk.t
	for _, p := range pkts {
		clk.t = start.Add(p.at)
		m.Push(p.video, p.pkt)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	pt := decryptAll(t, (*sinks)[0].Bytes(), key, "3f1c9d2e-7b4a-4c8e-9f61-2d5e8a7b0c13")
	in, err := InspectWebM(bytes.NewReader(pt))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := in.Track("V_VP8")
	a, _ := in.Track("A_OPUS")
	if uint64(v.Frames) != m.VideoFrames || uint64(a.Frames) != m.AudioFrames || v.Frames < 290 {
		t.Errorf("file has %d video and %d audio frames; the muxer wrote %d and %d", v.Frames, a.Frames, m.VideoFrames, m.AudioFrames)
	}
}
