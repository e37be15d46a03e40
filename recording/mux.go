package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/openvisit/openvisit/recording/streamaead"
)

// Track numbers in every chunk's WebM.
const (
	videoTrack = 1
	audioTrack = 2
)

const (
	videoClock = 90000
	audioClock = 48000
	// maxLate bounds reordering: packets this far behind are given up on
	// (the sample with them is dropped and a keyframe is asked for).
	videoMaxLate = 512
	audioMaxLate = 64
	// rotateGrace: after a rotation is due, wait this long for a keyframe
	// before rotating anyway (the new chunk's video then waits for one).
	rotateGrace = 5 * time.Second
	// audioOnlyAfter: open a chunk without video when no keyframe came.
	audioOnlyAfter = 3 * time.Second
)

// avSorter interleaves the tracks by timestamp before ebml-go writes them.
// webm's default keeps 16 frames and drops any frame older than what it
// has written, so video whose delivery falls 320 ms behind the audio (an
// encoder or network slowing down, as under load) was silently dropped
// while the counters said it was recorded. This one holds up to 3 s of
// skew (and at most 1000 frames, ≈1 MB at 2.5 Mbit/s, per participant)
// before it lets a lagging track's frames go.
var avSorter = mkvcore.MustBlockInterceptor(mkvcore.NewMultiTrackBlockSorter(
	mkvcore.WithMaxTimescaleDelay(3000), mkvcore.WithMaxDelayedPackets(1000),
	mkvcore.WithSortRule(mkvcore.BlockSorterDropOutdated)))

// opusHead is the Opus ID header WebM carries as CodecPrivate (RFC 7845):
// version 1, 2 channels, pre-skip 312, 48 kHz, gain 0, mapping family 0.
var opusHead = []byte{'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0}

// vp8Keyframe reports whether a VP8 frame is a keyframe and its size.
func vp8Keyframe(b []byte) (key bool, w, h int) {
	if len(b) < 3 || b[0]&0x01 != 0 {
		return false, 0, 0
	}
	if len(b) >= 10 && b[3] == 0x9d && b[4] == 0x01 && b[5] == 0x2a {
		w = int(binary.LittleEndian.Uint16(b[6:8]) & 0x3fff)
		h = int(binary.LittleEndian.Uint16(b[8:10]) & 0x3fff)
	}
	return true, w, h
}

// ChunkSink receives a chunk's ciphertext. The recorder's sink spools and
// uploads it (chunkUpload); benchmarks discard it.
type ChunkSink interface {
	io.WriteCloser
}

// MuxParams configures a Muxer.
type MuxParams struct {
	RecordingID string
	DataKey     []byte
	SegmentSize int
	// ChunkDuration rotates to a new chunk at the next keyframe after it.
	ChunkDuration time.Duration
	// NewChunk returns the sink of chunk seq, which starts at started.
	// The returned start func (may be nil) runs once the header is written.
	NewChunk func(seq int, started time.Time) (ChunkSink, func(), error)
	// OnChunkClosed is told a chunk's media time span before its sink closes.
	OnChunkClosed func(sink ChunkSink, ended time.Time, duration time.Duration)
	// RequestKeyframe asks the publisher for a keyframe (PLI).
	RequestKeyframe func()
	Logger          *slog.Logger
	Now             func() time.Time
}

// trackClock maps one track's RTP timestamps to milliseconds since the
// muxer's start.
type trackClock struct {
	started bool
	anchor  int64 // ms since muxer start of the first sample
	last    uint32
	ext     int64 // unwrapped ticks since the first sample
	rate    int64
}

func (c *trackClock) ms(ts uint32, now int64) int64 {
	if !c.started {
		c.started, c.anchor, c.last = true, now, ts
	}
	c.ext += int64(int32(ts - c.last))
	c.last = ts
	return c.anchor + c.ext*1000/c.rate
}

// Muxer turns one participant's RTP (VP8 video, Opus audio) into a series
// of WebM chunks, each encrypted with the streaming AEAD into its sink.
// Lifecycle: NewMuxer → Push… (one goroutine) → Close; a closed Muxer
// cannot be reused. It tolerates loss and reordering: samples are built by
// Pion's samplebuilder; a lost video frame drops video until the next
// keyframe (and asks for one).
type Muxer struct {
	p     MuxParams
	log   *slog.Logger
	start time.Time

	vsb, asb     *samplebuilder.SampleBuilder
	vclk, aclk   trackClock
	firstAudioAt time.Time

	chunk *muxChunk
	seq   int
	// rotateAt: a rotation is due since then (zero: none due).
	rotateAt time.Time

	// Counters (read by the owner after Close or from its goroutine).
	// VideoFrames and AudioFrames count frames written into the recording.
	VideoFrames, AudioFrames, DroppedFrames uint64
}

type muxChunk struct {
	sink         ChunkSink
	enc          *streamaead.Writer
	writers      []webm.BlockWriteCloser
	opened       time.Time
	firstMS      int64
	lastMS       int64
	needKeyframe bool

	// errMu guards err: ebml-go's goroutine sets it, the muxer reads it.
	errMu sync.Mutex
	err   error
}

func (c *muxChunk) setErr(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
}

func (c *muxChunk) getErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// NewMuxer returns a Muxer.
func NewMuxer(p MuxParams) (*Muxer, error) {
	if len(p.DataKey) != streamaead.KeySize || p.NewChunk == nil {
		return nil, errors.New("recording: muxer needs a 32-byte data key and NewChunk")
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.RequestKeyframe == nil {
		p.RequestKeyframe = func() {}
	}
	if p.ChunkDuration <= 0 {
		p.ChunkDuration = 30 * time.Second
	}
	// The muxer owns a copy of the key and zeroes it on Close.
	p.DataKey = append([]byte(nil), p.DataKey...)
	return &Muxer{
		p: p, log: p.Logger, start: p.Now(),
		vsb:  samplebuilder.New(videoMaxLate, &codecs.VP8Packet{}, videoClock),
		asb:  samplebuilder.New(audioMaxLate, &codecs.OpusPacket{}, audioClock),
		vclk: trackClock{rate: videoClock}, aclk: trackClock{rate: audioClock},
	}, nil
}

// Push takes one RTP packet (video or audio). The muxer keeps pkt.
func (m *Muxer) Push(video bool, pkt *rtp.Packet) {
	if video {
		m.vsb.Push(pkt)
		for s := m.vsb.Pop(); s != nil; s = m.vsb.Pop() {
			m.videoSample(s)
		}
		return
	}
	m.asb.Push(pkt)
	for s := m.asb.Pop(); s != nil; s = m.asb.Pop() {
		m.audioSample(s)
	}
}

// ResetTrack starts a track over: its publisher's track was replaced (a
// rejoin), so sequence numbers and timestamps begin anew.
func (m *Muxer) ResetTrack(video bool) {
	if video {
		m.vsb = samplebuilder.New(videoMaxLate, &codecs.VP8Packet{}, videoClock)
		m.vclk = trackClock{rate: videoClock}
		if m.chunk != nil {
			m.chunk.needKeyframe = true
		}
		return
	}
	m.asb = samplebuilder.New(audioMaxLate, &codecs.OpusPacket{}, audioClock)
	m.aclk = trackClock{rate: audioClock}
}

func (m *Muxer) sinceStart() int64 { return m.p.Now().Sub(m.start).Milliseconds() }

func (m *Muxer) videoSample(s *media.Sample) {
	now := m.sinceStart()
	ts := m.vclk.ms(s.PacketTimestamp, now)
	key, w, h := vp8Keyframe(s.Data)
	if s.PrevDroppedPackets > 0 && m.chunk != nil && !key {
		// A frame was lost: what follows until a keyframe does not decode.
		m.chunk.needKeyframe = true
		m.p.RequestKeyframe()
	}
	switch {
	case m.chunk == nil && key:
		m.open(ts, w, h)
	case m.chunk != nil && key && !m.rotateAt.IsZero():
		m.rotate(ts, w, h)
	}
	c := m.chunk
	if c == nil || ts < c.firstMS {
		m.DroppedFrames++
		if c == nil {
			m.p.RequestKeyframe()
		}
		return
	}
	if c.needKeyframe {
		if !key {
			m.DroppedFrames++
			return
		}
		c.needKeyframe = false
	}
	if m.write(videoTrack, key, ts, s.Data) {
		m.VideoFrames++
	}
	m.checkRotation()
}

func (m *Muxer) audioSample(s *media.Sample) {
	now := m.sinceStart()
	ts := m.aclk.ms(s.PacketTimestamp, now)
	if m.firstAudioAt.IsZero() {
		m.firstAudioAt = m.p.Now()
	}
	if m.chunk == nil && m.p.Now().Sub(m.firstAudioAt) >= audioOnlyAfter {
		// No keyframe (or no video at all): record the audio anyway.
		m.open(ts, 0, 0)
		m.chunk.needKeyframe = true
	}
	if m.chunk != nil && !m.rotateAt.IsZero() && m.p.Now().Sub(m.rotateAt) >= rotateGrace {
		m.rotate(ts, 0, 0)
		m.chunk.needKeyframe = true
	}
	c := m.chunk
	if c == nil || ts < c.firstMS {
		m.DroppedFrames++
		return
	}
	if m.write(audioTrack, true, ts, s.Data) {
		m.AudioFrames++
	}
	m.checkRotation()
}

func (m *Muxer) checkRotation() {
	if m.chunk != nil && m.rotateAt.IsZero() && m.p.Now().Sub(m.chunk.opened) >= m.p.ChunkDuration {
		m.rotateAt = m.p.Now()
		m.p.RequestKeyframe()
	}
}

// write writes one frame into the current chunk; false when the chunk has
// failed (the frame is dropped and counted).
func (m *Muxer) write(track uint64, key bool, ts int64, data []byte) bool {
	c := m.chunk
	if c.getErr() != nil {
		m.DroppedFrames++
		return false
	}
	// ebml-go keeps the slice until written: give it its own copy (the
	// samplebuilder reuses packet payloads).
	b := make([]byte, len(data))
	copy(b, data)
	if _, err := c.writers[track-1].Write(key, ts, b); err != nil {
		c.setErr(err)
		m.log.Error("webm write", "err", err)
		return false
	}
	if ts > c.lastMS {
		c.lastMS = ts
	}
	return true
}

func (m *Muxer) rotate(ts int64, w, h int) {
	m.closeChunk()
	m.open(ts, w, h)
}

// open starts chunk m.seq with its first frame at ts.
func (m *Muxer) open(ts int64, w, h int) {
	m.rotateAt = time.Time{}
	if w == 0 || h == 0 {
		w, h = 640, 480 // unknown until a keyframe; players use the frame's own size
	}
	now := m.p.Now()
	seq := m.seq
	m.seq++
	c := &muxChunk{opened: now, firstMS: ts, lastMS: ts}
	m.chunk = c
	sink, started, err := m.p.NewChunk(seq, now)
	if err != nil {
		c.setErr(err)
		m.log.Error("new chunk", "err", err)
		return
	}
	c.sink = sink
	enc, err := streamaead.NewWriter(sink, m.p.DataKey, []byte(m.p.RecordingID), streamaead.Params{SegmentSize: m.p.SegmentSize})
	if err != nil {
		c.setErr(err)
		_ = sink.Close()
		m.log.Error("chunk encryptor", "err", err)
		return
	}
	c.enc = enc
	if started != nil {
		started()
	}
	tracks := []webm.TrackEntry{
		{Name: "video", TrackNumber: videoTrack, TrackUID: 1, CodecID: "V_VP8", TrackType: 1,
			Video: &webm.Video{PixelWidth: uint64(w), PixelHeight: uint64(h)}},
		{Name: "audio", TrackNumber: audioTrack, TrackUID: 2, CodecID: "A_OPUS", TrackType: 2,
			CodecPrivate: opusHead, Audio: &webm.Audio{SamplingFrequency: 48000, Channels: 2}},
	}
	ws, err := webm.NewSimpleBlockWriter(encCloser{c}, tracks,
		mkvcore.WithSegmentInfo(&webm.Info{TimecodeScale: 1_000_000, MuxingApp: "openvisit", WritingApp: "openvisit"}),
		mkvcore.WithOnFatalHandler(func(err error) {
			c.setErr(err)
			m.log.Error("webm", "err", err)
		}),
		mkvcore.WithOnErrorHandler(func(error) {}),
		mkvcore.WithBlockInterceptor(avSorter),
		// A new cluster at each video keyframe (at least 1 s apart) helps
		// players seek in a file without Cues.
		mkvcore.WithMaxKeyframeInterval(videoTrack, 1000),
	)
	if err != nil {
		c.setErr(err)
		_ = enc.Close()
		_ = sink.Close()
		m.log.Error("webm writer", "err", err)
		return
	}
	c.writers = ws
}

// encCloser is the io.WriteCloser ebml-go writes to: the encryptor, whose
// Close seals the final segment and closes the sink.
type encCloser struct{ c *muxChunk }

func (e encCloser) Write(p []byte) (int, error) {
	n, err := e.c.enc.Write(p)
	if err != nil {
		e.c.setErr(err)
	}
	// ebml-go treats a write error as fatal for the whole file; report
	// success and keep the error on the chunk.
	return n + (len(p) - n), nil
}

func (e encCloser) Close() error {
	err := e.c.enc.Close()
	if cerr := e.c.sink.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		e.c.setErr(err)
	}
	return nil
}

func (m *Muxer) closeChunk() {
	c := m.chunk
	m.chunk = nil
	if c == nil || c.sink == nil {
		return
	}
	dur := time.Duration(c.lastMS-c.firstMS) * time.Millisecond
	if m.p.OnChunkClosed != nil {
		m.p.OnChunkClosed(c.sink, m.p.Now(), dur)
	}
	if c.writers == nil {
		if c.enc != nil {
			_ = c.enc.Close()
		}
		_ = c.sink.Close()
		return
	}
	// Closing the last track writer waits until ebml-go has written the
	// end and closed encCloser.
	for _, w := range c.writers {
		_ = w.Close()
	}
	if err := c.getErr(); err != nil {
		m.log.Warn("chunk closed with error", "err", err)
	}
}

// Close flushes what the samplebuilders hold and closes the open chunk.
func (m *Muxer) Close() error {
	m.vsb.Flush()
	for s := m.vsb.Pop(); s != nil; s = m.vsb.Pop() {
		m.videoSample(s)
	}
	m.asb.Flush()
	for s := m.asb.Pop(); s != nil; s = m.asb.Pop() {
		m.audioSample(s)
	}
	var err error
	if m.chunk != nil {
		err = m.chunk.getErr()
	}
	m.closeChunk()
	clear(m.p.DataKey)
	if err != nil {
		return fmt.Errorf("recording: mux: %w", err)
	}
	return nil
}

// Chunks returns how many chunks were opened.
func (m *Muxer) Chunks() int { return m.seq }
