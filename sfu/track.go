package sfu

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// keyframeInterval bounds how often subscribers' keyframe requests reach a
// publisher: one request already produces the keyframe everyone needs.
const keyframeInterval = 500 * time.Millisecond

// rtpBufSize holds one RTP packet at any MTU a peer may use.
const rtpBufSize = 1500

// upTrack is one incoming track and the local track every subscriber's
// sender is bound to. Lifecycle: created on OnTrack → published → forward
// runs until the remote track ends → unpublished (closed).
type upTrack struct {
	owner  *participant
	remote *webrtc.TrackRemote
	local  *downTrack
	video  bool
	// closed is set when the track leaves the room, so that no new
	// subscription is made to it.
	closed atomic.Bool
	// binds counts subscribers whose sender is bound (negotiated), for the
	// forwarded counters.
	binds atomic.Int64
	// lastKeyframeReq is the monotonic time (ns since start) of the last
	// keyframe request sent to the publisher.
	lastKeyframeReq atomic.Int64
	start           time.Time
}

func newUpTrack(p *participant, remote *webrtc.TrackRemote, id string) (*upTrack, error) {
	// The stream ID is the publisher's participant ID: pages group a
	// participant's audio and video by it (PROTOCOL.md).
	local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, id, string(p.id))
	if err != nil {
		return nil, err
	}
	t := &upTrack{
		owner:  p,
		remote: remote,
		video:  remote.Kind() == webrtc.RTPCodecTypeVideo,
		start:  time.Now(),
	}
	t.lastKeyframeReq.Store(-int64(keyframeInterval))
	t.local = &downTrack{TrackLocalStaticRTP: local, up: t}
	return t, nil
}

// forward is the track's read loop: one preallocated buffer and one reused
// rtp.Packet, and a write that hands the packet to each bound subscriber's
// SRTP session without waiting on any of them.
func (t *upTrack) forward() {
	buf := make([]byte, rtpBufSize)
	var pkt rtp.Packet
	counters := &t.owner.sfu.fwd
	for {
		n, _, err := t.remote.Read(buf)
		if err != nil {
			return
		}
		t.forwardPacket(&pkt, buf[:n], counters)
	}
}

// forwardCounters are the node-wide hot-path counters.
type forwardCounters struct {
	packets atomic.Uint64
	bytes   atomic.Uint64
}

func (t *upTrack) forwardPacket(pkt *rtp.Packet, b []byte, c *forwardCounters) {
	if err := pkt.Unmarshal(b); err != nil {
		return
	}
	// Header extension IDs are negotiated per PeerConnection; the
	// publisher's IDs mean something else (or nothing) on a subscriber's
	// connection, and a stale MID extension misroutes packets in browsers.
	// Drop them; Unmarshal reuses the slice's capacity next time.
	pkt.Header.Extension = false
	pkt.Header.ExtensionProfile = 0
	pkt.Header.Extensions = pkt.Header.Extensions[:0]
	// Errors here are one subscriber's closed connection; the others got
	// the packet, and that subscriber's cleanup is under way.
	_ = t.local.WriteRTP(pkt)
	if subs := uint64(t.binds.Load()); subs > 0 {
		c.packets.Add(subs)
		c.bytes.Add(subs * uint64(len(b)))
	}
}

// requestKeyframe asks the publisher for a keyframe (PLI), at most once per
// keyframeInterval unless force is set (a new subscriber needs one now).
func (t *upTrack) requestKeyframe(force bool) {
	if !t.video {
		return
	}
	now := int64(time.Since(t.start))
	last := t.lastKeyframeReq.Load()
	if !force && now-last < int64(keyframeInterval) {
		return
	}
	if !t.lastKeyframeReq.CompareAndSwap(last, now) && !force {
		return // another subscriber's request won the race
	}
	pli := rtcp.PictureLossIndication{MediaSSRC: uint32(t.remote.SSRC())}
	_ = t.owner.pc.WriteRTCP([]rtcp.Packet{&pli})
}

// readRTCP drains RTCP from one subscriber's sender (the interceptors need
// it read) and passes keyframe requests on to the publisher. It returns when
// the sender stops.
func (t *upTrack) readRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, rtpBufSize)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				t.owner.log.Debug("rtcp read", "err", err)
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
				t.requestKeyframe(false)
			}
		}
	}
}

// downTrack is the local side of an upTrack. It counts bindings and asks for
// a keyframe when a new subscriber's sender starts.
type downTrack struct {
	*webrtc.TrackLocalStaticRTP
	up *upTrack
}

// Bind implements webrtc.TrackLocal.
func (d *downTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, err := d.TrackLocalStaticRTP.Bind(c)
	if err == nil {
		d.up.binds.Add(1)
		d.up.requestKeyframe(true)
	}
	return codec, err
}

// Unbind implements webrtc.TrackLocal.
func (d *downTrack) Unbind(c webrtc.TrackLocalContext) error {
	err := d.TrackLocalStaticRTP.Unbind(c)
	if err == nil {
		d.up.binds.Add(-1)
	}
	return err
}
