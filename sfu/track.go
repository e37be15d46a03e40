package sfu

import (
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// keyframeInterval bounds how often keyframe requests reach a publisher's
// layer: one request already produces the keyframe everyone needs.
const keyframeInterval = 500 * time.Millisecond

// rtpBufSize holds one RTP packet at any MTU a peer may use.
const rtpBufSize = 1500

// maxLayers is the number of simulcast layers a video track may have.
const maxLayers = 3

// rateWindow is how often a layer's bitrate is recomputed.
const rateWindow = 500 * time.Millisecond

// layerIndex maps a simulcast RID to its quality index: q(uarter), h(alf),
// f(ull) as the web client names them; no RID (no simulcast) is 0.
func layerIndex(rid string) int {
	switch rid {
	case "h", "1", "mid":
		return 1
	case "f", "2", "high":
		return 2
	}
	return 0
}

// layer is one encoding of an upTrack: the only one, or one simulcast RID.
// Its read loop runs from the publisher's OnTrack until the remote ends.
type layer struct {
	up     *upTrack
	q      int
	rid    string // the publisher's RID ("" without simulcast)
	remote *webrtc.TrackRemote
	ssrc   uint32
	// lastKeyframeReq is the monotonic time (ns since up.start) of the last
	// keyframe request for this layer.
	lastKeyframeReq atomic.Int64
	// bitrate (bits/s) over the last rateWindow, and the frame size of the
	// last keyframe (VP8); read by subscribers' layer selection.
	bitrate       atomic.Int64
	width, height atomic.Int32
	lastPacket    atomic.Int64 // ns since up.start
	// paused: the SFU told the publisher to stop sending this layer (no
	// subscriber wanted it); resumedAt (ns since up.start): when it last
	// told it to send again. Written by the owner's allocLoop only (see
	// updatePaused), read by subscribers' layer selection.
	paused    atomic.Bool
	resumedAt atomic.Int64
	// Owned by the owner's allocLoop: since when (ns since up.start) no
	// subscriber wants this layer, if unwanted.
	unwanted      bool
	unwantedSince int64
	// ended: the layer's read loop returned (its remote ended); the fast
	// path no longer forwards for it.
	ended atomic.Bool
	// mu serialises forwarding: the read loop forwards what Pion
	// delivers, the fast path what it takes itself. It guards the fields
	// below.
	mu                 sync.Mutex
	winStart, winBytes int64
	received           seenSet
	newest             uint16 // the newest sequence number received
	started            bool   // newest is set
}

// upTrack is one published track with its layers and its subscribers'
// downTracks. Lifecycle: created on the first OnTrack of its receiver →
// published → layers forward until their remotes end → unpublished (closed).
type upTrack struct {
	owner *participant
	id    string
	kind  webrtc.RTPCodecType
	codec webrtc.RTPCodecCapability
	ck    codecKind
	// absID is the publisher's ID of the abs-capture-time extension (0: not
	// negotiated), read from the receiver's parameters.
	absID uint8
	start time.Time

	layers [maxLayers]atomic.Pointer[layer]
	// downs is the copy-on-write list of subscribers, read lock-free by the
	// read loops; mu serialises its writers.
	mu    sync.Mutex
	downs atomic.Pointer[[]*downTrack]
	// live counts running layer read loops; the last one to end
	// unpublishes the track.
	live atomic.Int32
	// closed is set when the track leaves the room, so that no new
	// subscription is made to it.
	closed atomic.Bool
	// mid is the publisher's m-section of this track, which names it in a
	// layers message: the publisher never sees the server's track ID.
	mid string
}

func newUpTrack(p *participant, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver, id string) *upTrack {
	codec := remote.Codec().RTPCodecCapability
	t := &upTrack{
		owner: p,
		id:    id,
		kind:  remote.Kind(),
		codec: codec,
		start: time.Now(),
	}
	switch strings.ToLower(codec.MimeType) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		t.ck = codecVP8
	case strings.ToLower(webrtc.MimeTypeH264):
		t.ck = codecH264
	}
	for _, e := range recv.GetParameters().HeaderExtensions {
		if e.URI == absCaptureTimeURI {
			t.absID = uint8(e.ID) //nolint:gosec // extension IDs are 1..255
		}
	}
	empty := []*downTrack{}
	t.downs.Store(&empty)
	return t
}

func (t *upTrack) video() bool { return t.kind == webrtc.RTPCodecTypeVideo }

// addLayer attaches remote as the layer its RID names; false when that
// layer exists already.
func (t *upTrack) addLayer(remote *webrtc.TrackRemote) *layer {
	l := &layer{up: t, q: layerIndex(remote.RID()), rid: remote.RID(), remote: remote, ssrc: uint32(remote.SSRC())}
	l.lastKeyframeReq.Store(-int64(keyframeInterval))
	l.resumedAt.Store(-int64(time.Hour)) // never resumed
	if !t.layers[l.q].CompareAndSwap(nil, l) {
		return nil
	}
	return l
}

// layer returns layer q (nil when it does not exist).
func (t *upTrack) layer(q int) *layer {
	if q < 0 || q >= maxLayers {
		return nil
	}
	return t.layers[q].Load()
}

func (t *upTrack) addDown(d *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.downs.Load()
	next := make([]*downTrack, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, d)
	t.downs.Store(&next)
	// A new subscriber's first layer may be one paused for want of
	// viewers: resume it now rather than at the owner's next tick.
	if l := t.layer(int(d.target.Load())); l != nil && l.paused.Load() {
		t.owner.wakeLayers()
	}
	// layersBest wants the best layer too, which may be paused.
	if l := t.layer(t.highestActive()); d.sub.policy.layers == layersBest && l != nil && l.paused.Load() {
		t.owner.wakeLayers()
	}
}

func (t *upTrack) removeDown(d *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.downs.Load()
	next := make([]*downTrack, 0, len(old))
	for _, o := range old {
		if o != d {
			next = append(next, o)
		}
	}
	t.downs.Store(&next)
}

// forward is a layer's read loop: one preallocated buffer and one reused
// rtp.Packet; each packet is offered to every subscriber without waiting on
// any of them.
func (l *layer) forward() {
	buf := make([]byte, rtpBufSize)
	var pkt rtp.Packet
	counters := &l.up.owner.worker.fwd
	for {
		n, _, err := l.remote.Read(buf)
		if err != nil {
			return
		}
		l.mu.Lock()
		l.forwardPacket(&pkt, buf[:n], counters)
		l.mu.Unlock()
	}
}

// forwardCounters are a worker's hot-path counters (Stats sums them):
// one set per worker, padded to their own cache lines, so that workers do
// not bounce a shared line between cores on every packet.
type forwardCounters struct {
	_       [64]byte
	packets atomic.Uint64
	bytes   atomic.Uint64
	dropped atomic.Uint64
	_       [64 - 24]byte
}

// forwardPacket parses one packet of l and queues it to every subscriber
// that takes this layer. It allocates nothing.
func (l *layer) forwardPacket(pkt *rtp.Packet, b []byte, c *forwardCounters) {
	if err := pkt.Unmarshal(b); err != nil || len(pkt.Payload) == 0 {
		return // padding-only probes are the sender's, not ours to forward
	}
	// Pion hands the read loop what came over RTX as the original packet:
	// a repair of one this node missed, or, as often, Chrome's bandwidth
	// probe resending one it already has. A packet seen before is not
	// forwarded again; one older than the newest seen is late (repaired
	// or reordered) and may only fill a gap.
	seq := pkt.SequenceNumber
	if !l.received.add(seq) {
		return
	}
	// Far behind is no late packet but a sender that started over.
	back := int16(seq - l.newest) //nolint:gosec // serial number arithmetic
	late := l.started && back < 0 && back > -maxLate
	if !late {
		l.newest, l.started = seq, true
	}
	t := l.up
	now := int64(time.Since(t.start))
	if now-l.lastPacket.Load() > int64(layerIdle) {
		// After a pause the window restarts: spanning the gap would
		// measure a near-zero rate, and the last measured one is closer.
		l.winStart, l.winBytes = now, 0
	}
	l.lastPacket.Store(now)
	l.winBytes += int64(len(b))
	if d := now - l.winStart; d >= int64(rateWindow) {
		l.bitrate.Store(l.winBytes * 8 * int64(time.Second) / d)
		l.winStart, l.winBytes = now, 0
	}
	kf, w, h := keyframe(t.ck, pkt.Payload)
	if w > 0 {
		l.width.Store(int32(w))  //nolint:gosec // 14-bit values
		l.height.Store(int32(h)) //nolint:gosec // 14-bit values
	}
	var abs []byte
	if t.absID != 0 {
		abs = pkt.Header.GetExtension(t.absID)
	}
	var sent, dropped uint64
	for _, d := range *t.downs.Load() {
		switch d.push(l, pkt, kf, late, abs, now) {
		case pushQueued:
			sent++
		case pushDropped:
			dropped++
		}
	}
	if sent > 0 {
		c.packets.Add(sent)
		c.bytes.Add(sent * uint64(len(b)))
	}
	if dropped > 0 {
		c.dropped.Add(dropped)
	}
}

// requestKeyframe asks the publisher for a keyframe on layer l (PLI), at
// most once per keyframeInterval unless force is set.
func (l *layer) requestKeyframe(force bool) {
	t := l.up
	if !t.video() {
		return
	}
	now := int64(time.Since(t.start))
	last := l.lastKeyframeReq.Load()
	if !force && now-last < int64(keyframeInterval) {
		return
	}
	if !l.lastKeyframeReq.CompareAndSwap(last, now) && !force {
		return // another subscriber's request won the race
	}
	pli := rtcp.PictureLossIndication{MediaSSRC: l.ssrc}
	_ = t.owner.pc.WriteRTCP([]rtcp.Packet{&pli})
}

// requestKeyframe asks for a keyframe on layer q, if it exists.
func (t *upTrack) requestKeyframe(q int, force bool) {
	if l := t.layer(q); l != nil {
		l.requestKeyframe(force)
	}
}

// readRTCP drains RTCP from one subscriber's sender (the interceptors need
// it read: NACK, reports, TWCC for the bandwidth estimate) and passes
// keyframe requests on to the publisher. It returns when the sender stops.
func (d *downTrack) readRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, rtpBufSize)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				d.sub.log.Debug("rtcp read", "err", err)
			}
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pk := range pkts {
			switch pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.up.requestKeyframe(int(d.current.Load()), false)
			}
		}
	}
}
