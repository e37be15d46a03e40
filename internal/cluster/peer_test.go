package cluster

import (
	"crypto/tls"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/openvisit/openvisit/signaling"
)

// peer is a Pion participant: it joins with a grant, publishes synthetic
// VP8 and Opus, and counts the RTP it receives from others.
type peer struct {
	ws       *websocket.Conn
	wmu      sync.Mutex
	pc       *webrtc.PeerConnection
	stop     chan struct{}
	closed   chan struct{} // the socket reader returned
	wg       sync.WaitGroup
	received atomic.Int64 // RTP packets from other participants
	once     sync.Once
}

func joinPeer(t *testing.T, g signaling.JoinGrant) *peer {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 20 * time.Second, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // self-signed test certificate
	ws, resp, err := d.Dial(g.WSURL, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatalf("dial %s: %v", g.WSURL, err)
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{ws: ws, pc: pc, stop: make(chan struct{}), closed: make(chan struct{})}
	t.Cleanup(p.close)
	p.send(map[string]any{"type": "join", "token": g.Token, "visit": string(g.VisitID)})
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	var joined map[string]any
	if err := ws.ReadJSON(&joined); err != nil || joined["type"] != "joined" {
		t.Fatalf("join: %v %v", joined, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			p.send(map[string]any{"type": "candidate", "candidate": c.ToJSON()})
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			p.received.Add(1)
		}
	})
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "cam")
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		sender, err := pc.AddTrack(tr)
		if err != nil {
			t.Fatal(err)
		}
		p.wg.Add(1)
		go func() { // drain RTCP
			defer p.wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := sender.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = pc.SetLocalDescription(offer)
	p.send(map[string]any{"type": "offer", "sdp": offer.SDP})
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		defer close(p.closed)
		for {
			var m struct {
				Type      string                   `json:"type"`
				SDP       string                   `json:"sdp"`
				Candidate *webrtc.ICECandidateInit `json:"candidate"`
			}
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			switch m.Type {
			case "answer":
				_ = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
			case "offer":
				_ = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP})
				a, err := pc.CreateAnswer(nil)
				if err == nil && pc.SetLocalDescription(a) == nil {
					p.send(map[string]any{"type": "answer", "sdp": a.SDP})
				}
			case "candidate":
				if m.Candidate != nil {
					_ = pc.AddICECandidate(*m.Candidate)
				}
			}
		}
	}()
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			_ = video.WriteSample(media.Sample{Data: synthVP8(n%60 == 0), Duration: time.Second / 30})
			_ = audio.WriteSample(media.Sample{Data: make([]byte, 80), Duration: time.Second / 30})
		}
	}()
	return p
}

// synthVP8 returns a small VP8-shaped frame (a keyframe carries the start
// code and a 320x240 size).
func synthVP8(key bool) []byte {
	b := make([]byte, 400)
	if key {
		b[0] = 0x10
		b[3], b[4], b[5] = 0x9d, 0x01, 0x2a
		b[6], b[8] = 0x40, 0xf0
		b[7] = 0x01
	} else {
		b[0] = 0x11
	}
	return b
}

func (p *peer) send(v any) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = p.ws.WriteJSON(v)
}

// receiving waits until the peer's received count grows.
func (p *peer) receiving(t *testing.T, what string, timeout time.Duration) {
	t.Helper()
	start := p.received.Load()
	waitFor(t, what, timeout, func() bool { return p.received.Load() > start+20 })
}

// dropped reports whether the node closed the peer's socket.
func (p *peer) dropped() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// leave says goodbye and closes everything.
func (p *peer) close() {
	p.once.Do(func() {
		close(p.stop)
		p.send(map[string]any{"type": "leave"})
		_ = p.pc.Close()
		_ = p.ws.Close()
		p.wg.Wait()
	})
}
