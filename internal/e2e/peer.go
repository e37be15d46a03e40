package e2e

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/openvisit/openvisit/internal/loadtest"
	"github.com/openvisit/openvisit/sfu/client"
	"github.com/openvisit/openvisit/signaling"
)

// PeerOptions adjust a Peer.
type PeerOptions struct {
	// ConfigureWebRTC sets the peer's ICE settings; nil: UDP4 on every
	// interface with mDNS off (what separate media processes need).
	ConfigureWebRTC func(*webrtc.SettingEngine)
	// FrameSize is the size of a synthetic video frame (keyframes are three
	// times larger); 0 means 400 bytes.
	FrameSize int
	// Clip, when set, is published (looped) instead of synthetic frames:
	// real VP8 and Opus that a browser can decode (LoadClip).
	Clip *Clip
}

// Clip is recorded media a Peer publishes in real time, looped.
type Clip struct {
	Video, Audio []media.Sample
}

// LoadClip reads recorded media from dir: video-720p.ivf (VP8) and
// audio.ogg (Opus, one packet a page), as in loadtest/testdata.
func LoadClip(t testing.TB, dir string) *Clip {
	t.Helper()
	c := &Clip{}
	f, err := os.Open(filepath.Join(dir, "video-720p.ivf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ivf, h, err := ivfreader.NewWith(f)
	if err != nil || h.TimebaseDenominator == 0 {
		t.Fatalf("ivf: %v", err)
	}
	per := time.Duration(float64(time.Second) * float64(h.TimebaseNumerator) / float64(h.TimebaseDenominator))
	for {
		frame, _, err := ivf.ParseNextFrame()
		if err != nil {
			break
		}
		c.Video = append(c.Video, media.Sample{Data: frame, Duration: per})
	}
	g, err := os.Open(filepath.Join(dir, "audio.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ogg, _, err := oggreader.NewWith(g)
	if err != nil {
		t.Fatalf("ogg: %v", err)
	}
	for {
		page, hdr, err := ogg.ParseNextPage()
		if err != nil {
			break
		}
		if _, ok := hdr.HeaderType(page); ok {
			continue // OpusHead, OpusTags
		}
		c.Audio = append(c.Audio, media.Sample{Data: page, Duration: 20 * time.Millisecond})
	}
	if len(c.Video) == 0 || len(c.Audio) == 0 {
		t.Fatalf("clip in %s: %d video, %d audio frames", dir, len(c.Video), len(c.Audio))
	}
	return c
}

// Peer is a Pion participant for tests that need media without a browser:
// it joins with a grant through the SFU client, publishes synthetic VP8 at
// 30 fps (a keyframe every 2 s) and Opus, answers the server's offers and
// counts the RTP it receives from others. Lifecycle: JoinPeer, then Close
// (also registered as a test cleanup).
type Peer struct {
	conn     *client.Conn
	stop     chan struct{}
	wg       sync.WaitGroup
	received atomic.Int64 // RTP packets from other participants
	frames   atomic.Int64 // video frames written
	once     sync.Once
}

// JoinPeer joins g's visit and starts publishing.
func JoinPeer(t testing.TB, g signaling.JoinGrant, o PeerOptions) *Peer {
	t.Helper()
	if o.FrameSize == 0 {
		o.FrameSize = 400
	}
	var se webrtc.SettingEngine
	if o.ConfigureWebRTC != nil {
		o.ConfigureWebRTC(&se)
	} else {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	p := &Peer{stop: make(chan struct{})}
	conn, err := client.Join(context.Background(), client.Params{
		URL: g.WSURL, Token: g.Token, Visit: g.VisitID,
		Dialer:      &websocket.Dialer{HandshakeTimeout: 20 * time.Second, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // self-signed test certificate
		API:         webrtc.NewAPI(webrtc.WithSettingEngine(se)),
		JoinTimeout: 20 * time.Second,
		Handlers:    client.Handlers{OnTrack: p.onTrack},
	})
	if err != nil {
		t.Fatalf("join %s: %v", g.WSURL, err)
	}
	p.conn = conn
	t.Cleanup(p.Close)
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "cam")
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		sender, err := conn.PC().AddTrack(tr)
		if err != nil {
			t.Fatal(err)
		}
		p.wg.Add(1)
		go func() { // drain RTCP: the interceptors need it read
			defer p.wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := sender.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	if err := conn.Offer(); err != nil {
		t.Fatal(err)
	}
	conn.Start()
	p.wg.Add(1)
	if o.Clip != nil {
		go p.publishClip(video, audio, o.Clip)
	} else {
		go p.publish(video, audio, o.FrameSize)
	}
	return p
}

// onTrack counts the packets of one track from another participant.
func (p *Peer) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := tr.Read(buf); err != nil {
			return
		}
		p.received.Add(1)
	}
}

func (p *Peer) publish(video, audio *webrtc.TrackLocalStaticSample, frameSize int) {
	defer p.wg.Done()
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		key := n%60 == 0
		size := frameSize
		if key {
			size *= 3
		}
		if video.WriteSample(media.Sample{Data: loadtest.SyntheticVP8(key, size), Duration: time.Second / 30}) == nil {
			p.frames.Add(1)
		}
		_ = audio.WriteSample(media.Sample{Data: make([]byte, 80), Duration: time.Second / 30})
	}
}

// publishClip sends a clip's frames at their own pace, looped.
func (p *Peer) publishClip(video, audio *webrtc.TrackLocalStaticSample, c *Clip) {
	defer p.wg.Done()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var vt, at time.Duration
	for vi, ai := 0, 0; ; {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		now := time.Since(start)
		for ; vt <= now; vi++ {
			s := c.Video[vi%len(c.Video)]
			if video.WriteSample(s) == nil {
				p.frames.Add(1)
			}
			vt += s.Duration
		}
		for ; at <= now; ai++ {
			s := c.Audio[ai%len(c.Audio)]
			_ = audio.WriteSample(s)
			at += s.Duration
		}
	}
}

// Received counts the RTP packets received from other participants.
func (p *Peer) Received() int64 { return p.received.Load() }

// Frames counts the video frames written.
func (p *Peer) Frames() int64 { return p.frames.Load() }

// Dropped reports whether the server closed the peer's socket.
func (p *Peer) Dropped() bool {
	select {
	case <-p.conn.Done():
		return true
	default:
		return false
	}
}

// Closed returns a channel closed when the server has closed the socket.
func (p *Peer) Closed() <-chan struct{} { return p.conn.Done() }

// CloseCode is the WebSocket close code the server ended the socket with
// (0 while open, or when it broke without one).
func (p *Peer) CloseCode() int { return p.conn.CloseCode() }

// Close says goodbye and closes everything; it may be called again.
func (p *Peer) Close() {
	p.once.Do(func() {
		close(p.stop)
		_ = p.conn.Leave()
		p.conn.Close()
		p.wg.Wait()
	})
}
