package recording

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
)

type discardSink struct{ n int64 }

func (d *discardSink) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }
func (d *discardSink) Close() error                { return nil }

// BenchmarkMuxEncryptParticipant measures the recorder's CPU per recorded
// participant: 10 s of a realistic stream (30 fps VP8 ≈ 1.2 Mbit/s with a
// keyframe every 2 s, 50 Opus frames/s) through samplebuilder, the WebM
// muxer and the streaming AEAD. Divide ns/op by 10 s for the CPU share.
func BenchmarkMuxEncryptParticipant(b *testing.B) {
	pkts := newStream().packets(10 * time.Second)
	var bytesIn int64
	for _, p := range pkts {
		bytesIn += int64(len(p.pkt.Payload))
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	b.SetBytes(bytesIn)
	b.ReportAllocs()
	for b.Loop() {
		clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
		start := clk.t
		m, err := NewMuxer(MuxParams{
			RecordingID: "3f1c9d2e-7b4a-4c8e-9f61-2d5e8a7b0c13", DataKey: key, ChunkDuration: time.Hour,
			NewChunk: func(int, time.Time) (ChunkSink, func(), error) { return &discardSink{}, nil, nil },
			Now:      clk.now,
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range pkts {
			clk.t = start.Add(p.at)
			// The packetizer's packets are reused across iterations: the
			// samplebuilder only reads them.
			m.Push(p.video, p.pkt)
		}
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10e9*100, "%CPU/participant")
}

// BenchmarkPlaybackFirstByte measures time to the first byte of playback
// from MinIO: unwrap the data key, read and check the header, authenticate
// the final segment (NewReaderAt), then read the first 64 KiB — what the
// API does before and at the start of a response (audit excluded).
func BenchmarkPlaybackFirstByte(b *testing.B) {
	s3 := testenv.MinIO(b)
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	objs, err := NewObjects(s3.Config("ov-bench-" + hex.EncodeToString(rb[:])))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := objs.EnsureBucket(ctx); err != nil {
		b.Fatal(err)
	}
	kf, err := keys.OpenKeyringFile(b.TempDir()+"/keyring.json", true, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	kr, _ := kf.Keyring()
	rec := "3f1c9d2e-7b4a-4c8e-9f61-2d5e8a7b0c13"
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	kek, wrapped, _ := kr.Wrap(dek, rec)
	// 60 s of media as one chunk (≈ 9 MiB).
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	sink := &memSink{}
	m, _ := NewMuxer(MuxParams{RecordingID: rec, DataKey: dek, ChunkDuration: time.Hour,
		NewChunk: func(int, time.Time) (ChunkSink, func(), error) { return sink, nil, nil }, Now: clk.now})
	start := clk.t
	for _, p := range newStream().packets(60 * time.Second) {
		clk.t = start.Add(p.at)
		m.Push(p.video, p.pkt)
	}
	_ = m.Close()
	ct := sink.Bytes()
	key := "rec/bench"
	up, err := objs.newUpload(ctx, key)
	if err != nil {
		b.Fatal(err)
	}
	part, err := objs.putPart(ctx, key, up, 1, ct)
	if err != nil {
		b.Fatal(err)
	}
	if err := objs.complete(ctx, key, up, []minioPart{part}); err != nil {
		b.Fatal(err)
	}
	lib := &Library{Objects: objs, Keys: kf}
	r := store.Recording{ID: rec, KEKID: kek, WrappedDEK: wrapped, SegmentSize: 1 << 20, Status: store.RecComplete}
	ch := store.Chunk{ObjectKey: key, Header: ct[:40], Size: int64(len(ct)), Status: store.ChunkComplete}
	buf := make([]byte, 64<<10)
	b.ResetTimer()
	for b.Loop() {
		pb, err := lib.Open(ctx, r, ch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(pb, buf); err != nil {
			b.Fatal(err)
		}
		pb.Close()
	}
}
