package sfu

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Queue depths per subscriber track, in packets. A video queue holds about
// half a second of a 2 Mbps layer; when it is full the subscriber is
// congested and video is dropped until the next keyframe.
const (
	videoQueue = 128
	audioQueue = 32
)

// maxLate is how far (in sequence numbers) behind the newest packet a late
// or repaired packet is still forwarded.
const maxLate = 4096

type pushResult uint8

const (
	pushSkipped pushResult = iota // not for this subscriber (other layer, not bound)
	pushQueued
	pushDropped // the subscriber's queue was full
)

// slot is one queued packet, rewritten for its subscriber. Its storage is
// fixed, so queueing copies and never allocates.
type slot struct {
	hdr     rtp.Header
	ext     [3]rtp.Extension // abs-capture-time, transport-cc, spare
	abs     [16]byte
	n       int
	payload [rtpBufSize]byte
}

// downTrack is one subscriber's copy of an upTrack: a webrtc.TrackLocal
// bound to that subscriber's sender, which picks a layer of the upTrack and
// rewrites SSRC, payload type, sequence numbers and timestamps so that
// layer switches are seamless, then queues packets for its own writer
// goroutine. A slow subscriber fills only its own queue.
//
// Lifecycle: new (subscribe) → bound (Bind starts the writer) → unbound
// (Unbind, or the PeerConnection closed: the writer ends). A downTrack is
// never bound twice.
type downTrack struct {
	up     *upTrack
	sub    *participant
	sender *webrtc.RTPSender

	// current is the layer being forwarded (-1: none yet); target the one
	// to switch to at its next keyframe (-1: paused). Written under mu, read
	// without it by the read loops' filter.
	current, target atomic.Int32

	mu sync.Mutex // guards what follows
	// The size at which the subscriber shows the track (layer_hint).
	hintW, hintH int
	hinted       bool
	bound        bool
	writer       webrtc.TrackLocalWriter
	ssrc         uint32
	pt           uint8
	absID        uint8
	clock        int64
	// Rewriting: out = in + offset, rebased at each switch or resync.
	started bool
	resync  bool // dropped: wait for a keyframe, then rebase
	seqOff  uint16
	tsOff   uint32
	baseSrc uint16 // the publisher's number of the packet rebased on
	lastSeq uint16
	lastTS  uint32
	lastAt  int64 // ns since up.start of the last queued packet
	ring    []slot
	head    int
	count   int

	// Probe state, owned by the subscriber's allocator goroutine.
	probing      bool
	probeStart   int64 // ns since up.start
	nextProbe    int64
	probeBackoff time.Duration

	wmu    sync.Mutex // one writer at a time on the stream (run, drain)
	notify chan struct{}
	stop   chan struct{}
	once   sync.Once
}

func newDownTrack(t *upTrack, sub *participant) *downTrack {
	d := &downTrack{
		up:     t,
		sub:    sub,
		notify: make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	d.current.Store(-1)
	switch {
	case t.video() && sub.policy.layers == layersBest:
		// The best layer sending now; the best one, if paused, is resumed
		// and taken when it comes (selectBestLayer).
		d.target.Store(int32(max(t.highestSendingAt(int64(time.Since(t.start))), t.lowestLayer()))) //nolint:gosec // < maxLayers
	case t.video():
		d.target.Store(int32(t.lowestLayer())) //nolint:gosec // < maxLayers
	default:
		d.target.Store(0)
	}
	return d
}

// lowestLayer is the smallest layer index that exists (0 when none yet).
func (t *upTrack) lowestLayer() int {
	for q := range maxLayers {
		if t.layer(q) != nil {
			return q
		}
	}
	return 0
}

// ID implements webrtc.TrackLocal.
func (d *downTrack) ID() string { return d.up.id }

// RID implements webrtc.TrackLocal: a subscriber gets one layer.
func (d *downTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal: the publisher's participant ID.
func (d *downTrack) StreamID() string { return string(d.up.owner.id) }

// Kind implements webrtc.TrackLocal.
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

// Bind implements webrtc.TrackLocal: it takes the negotiated codec and
// SSRC, and starts the writer.
func (d *downTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, ok := matchCodec(c.CodecParameters(), d.up.codec)
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	var absID uint8
	for _, e := range c.HeaderExtensions() {
		if e.URI == absCaptureTimeURI {
			absID = uint8(e.ID) //nolint:gosec // extension IDs are 1..255
		}
	}
	d.mu.Lock()
	if d.bound || d.ring != nil {
		d.mu.Unlock()
		return webrtc.RTPCodecParameters{}, errTrackClosed
	}
	if !d.sub.startGoroutine() {
		d.mu.Unlock()
		return webrtc.RTPCodecParameters{}, errTrackClosed
	}
	d.bound = true
	d.writer = c.WriteStream()
	d.ssrc = uint32(c.SSRC())
	d.pt = uint8(codec.PayloadType)
	d.absID = absID
	d.clock = int64(codec.ClockRate)
	n := audioQueue
	if d.up.video() {
		n = videoQueue
	}
	d.ring = make([]slot, n)
	d.mu.Unlock()

	go d.run()
	// A new subscriber needs a keyframe now.
	d.up.requestKeyframe(int(d.target.Load()), true)
	return codec, nil
}

// matchCodec picks the negotiated codec for want: the same MIME type and
// fmtp line, else the same MIME type.
func matchCodec(have []webrtc.RTPCodecParameters, want webrtc.RTPCodecCapability) (webrtc.RTPCodecParameters, bool) {
	var fuzzy *webrtc.RTPCodecParameters
	for i, c := range have {
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		if c.SDPFmtpLine == want.SDPFmtpLine {
			return c, true
		}
		if fuzzy == nil {
			fuzzy = &have[i]
		}
	}
	if fuzzy != nil {
		return *fuzzy, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// Unbind implements webrtc.TrackLocal: the writer stops.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.close()
	return nil
}

func (d *downTrack) close() {
	d.mu.Lock()
	d.bound = false
	d.mu.Unlock()
	d.once.Do(func() { close(d.stop) })
}

// push offers one packet of layer l to this subscriber. It never blocks on
// the network: the packet is copied into the subscriber's queue, or dropped
// when the queue is full (then video waits for a keyframe, which is asked
// for). kf tells whether the packet starts a keyframe; late whether it is
// older than a packet already received (repaired or reordered); abs is
// the packet's abs-capture-time extension (nil if none); now is ns since
// up.start.
func (d *downTrack) push(l *layer, pkt *rtp.Packet, kf, late bool, abs []byte, now int64) pushResult {
	q := int32(l.q) //nolint:gosec // < maxLayers
	if q != d.current.Load() && q != d.target.Load() {
		return pushSkipped
	}
	d.mu.Lock()
	if !d.bound {
		d.mu.Unlock()
		return pushSkipped
	}
	cur, tgt := d.current.Load(), d.target.Load()
	switching := false
	switch {
	case late && (q != cur || d.resync || !d.started):
		// A late packet only fills a gap in what is being sent: an old
		// keyframe packet must not start or switch the stream, or the
		// packets after it would leave a gap of never-sent numbers.
		d.mu.Unlock()
		return pushSkipped
	case q == tgt && q != cur:
		if !kf {
			d.mu.Unlock()
			return pushSkipped
		}
		switching = true
	case q != cur:
		d.mu.Unlock()
		return pushSkipped
	}
	if d.resync && !kf {
		d.mu.Unlock()
		return pushSkipped
	}
	if d.count == len(d.ring) {
		// Congested: drop to the next keyframe (video) and ask for it.
		video := d.up.video()
		if video {
			d.resync = true
		}
		d.mu.Unlock()
		if video {
			l.requestKeyframe(false)
		}
		return pushDropped
	}
	// Before the packet the numbering was rebased on: a late one's number
	// belongs to the previous segment; a new one's means the publisher
	// started over, and numbering goes on from the last sent.
	before := int16(pkt.SequenceNumber-d.baseSrc) < 0 //nolint:gosec // serial number arithmetic
	if late && before && d.started {
		d.mu.Unlock()
		return pushSkipped
	}
	if switching || d.resync || !d.started || before {
		d.rebaseLocked(pkt, now)
		d.current.Store(q)
	}
	seq := pkt.SequenceNumber + d.seqOff
	ts := pkt.Timestamp + d.tsOff
	if int16(seq-d.lastSeq) > 0 { //nolint:gosec // serial number arithmetic
		d.lastSeq, d.lastTS, d.lastAt = seq, ts, now
		// Keep the segment start within serial-number reach of the newest
		// packet; a packet this late is of no use to a decoder anyway.
		if int16(pkt.SequenceNumber-d.baseSrc) > maxLate { //nolint:gosec // serial number arithmetic
			d.baseSrc = pkt.SequenceNumber - maxLate
		}
	}
	s := &d.ring[(d.head+d.count)%len(d.ring)]
	s.hdr = rtp.Header{
		Version:        2,
		Marker:         pkt.Marker,
		PayloadType:    d.pt,
		SequenceNumber: seq,
		Timestamp:      ts,
		SSRC:           d.ssrc,
		Extensions:     s.ext[:0],
	}
	if len(abs) > 0 && len(abs) <= len(s.abs) && d.absID != 0 {
		n := copy(s.abs[:], abs)
		_ = s.hdr.SetExtension(d.absID, s.abs[:n])
	}
	s.n = copy(s.payload[:], pkt.Payload)
	d.count++
	d.mu.Unlock()
	// Over UDP a write never waits on this subscriber (the socket is the
	// node's, shared by all), so the read loop writes at once and saves a
	// goroutine hand-off; if another write is under way, or over TCP, whose
	// writes can block on one subscriber's window, the writer goroutine
	// sends it.
	if d.sub.inline.Load() && d.wmu.TryLock() {
		d.drainLocked()
		d.wmu.Unlock()
		return pushQueued
	}
	select {
	case d.notify <- struct{}{}:
	default:
	}
	return pushQueued
}

// awaitedKeyframe returns the layer whose keyframe d waits for, if any.
func (d *downTrack) awaitedKeyframe() (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, tgt := int(d.current.Load()), int(d.target.Load())
	switch {
	case !d.bound || tgt < 0:
		return 0, false
	case tgt != cur:
		return tgt, true
	case d.resync:
		return cur, true
	}
	return 0, false
}

// rebaseLocked makes pkt follow the last packet sent without a gap in
// sequence numbers, and with a timestamp advanced by the time elapsed.
func (d *downTrack) rebaseLocked(pkt *rtp.Packet, now int64) {
	if d.started {
		d.seqOff = d.lastSeq + 1 - pkt.SequenceNumber
		elapsed := uint32((now - d.lastAt) * d.clock / 1e9) //nolint:gosec // wraps like RTP time
		if elapsed == 0 {
			elapsed = 1
		}
		d.tsOff = d.lastTS + elapsed - pkt.Timestamp
	}
	// The first packet keeps the publisher's numbering (offsets 0).
	d.lastSeq = pkt.SequenceNumber + d.seqOff - 1
	d.baseSrc = pkt.SequenceNumber
	d.started = true
	d.resync = false
}

// run is the writer goroutine: it sends what push queued, in order.
func (d *downTrack) run() {
	defer d.sub.wg.Done()
	for {
		select {
		case <-d.notify:
			d.drain()
		case <-d.stop:
			return
		}
	}
}

// drain writes every queued packet through the subscriber's sender
// (interceptors, SRTP, the socket).
func (d *downTrack) drain() {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.drainLocked()
}

func (d *downTrack) drainLocked() {
	for {
		d.mu.Lock()
		if d.count == 0 || !d.bound {
			d.mu.Unlock()
			return
		}
		s := &d.ring[d.head]
		w := d.writer
		d.mu.Unlock()
		// An error is this subscriber's closed connection; its cleanup is
		// under way.
		_, _ = w.WriteRTP(&s.hdr, s.payload[:s.n])
		d.mu.Lock()
		d.head = (d.head + 1) % len(d.ring)
		d.count--
		d.mu.Unlock()
	}
}
