package loadtest

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/sfu/client"
	"github.com/openvisit/openvisit/sfu/protocol"
	"github.com/openvisit/openvisit/sfu/udp"
)

// absCaptureTimeURI carries the send time of each packet (NTP format), which
// the SFU forwards; a receiver in this process subtracts it from the arrival
// time to get the latency the SFU (and loopback) added.
const absCaptureTimeURI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"

// mtu is the RTP payload size the packetizer aims for (as browsers do).
const mtu = 1200

// peer is one simulated participant: a Pion PeerConnection joined through
// the SFU client, publishing the recorded VP8 and Opus, and measuring what
// it receives. Lifecycle: dial → run (until stop) → close.
type peer struct {
	run   *runner
	conn  *client.Conn
	video *webrtc.TrackLocalStaticRTP
	audio *webrtc.TrackLocalStaticRTP

	// receiving: kinds seen from the other participant.
	gotVideo, gotAudio atomic.Bool
	wg                 sync.WaitGroup
	stop               chan struct{}
	started            atomic.Bool // publish runs
	stopped            atomic.Bool // close began
	keyWanted          atomic.Bool // the SFU asked for a keyframe

	// fast is the media path around Pion (nil: media through Pion).
	fast *fastMedia
	mux  io.Closer
	// joinAt is when the join began; first finds the first whole
	// keyframe received after it (on the one goroutine receiving video).
	joinAt time.Time
	first  firstFrame
}

// sawVideo notes a received video packet for the join → first frame
// latency.
func (p *peer) sawVideo(seq uint16, marker bool, payload []byte, now time.Time) {
	if p.first.observe(seq, marker, payload) {
		p.run.addJoin(now.Sub(p.joinAt))
	}
}

func newAPI(configure ...func(*webrtc.SettingEngine)) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: absCaptureTimeURI}, k); err != nil {
			return nil, err
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	for _, c := range configure {
		if c != nil {
			c(&se)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// dial joins visit with tok and publishes; media starts once connected.
func (r *runner) dial(ctx context.Context, visit, tok string) (*peer, error) {
	p := &peer{run: r, stop: make(chan struct{}), joinAt: time.Now()}
	api := r.api
	if !r.p.PionMedia {
		var err error
		if api, err = p.fastAPI(); err != nil {
			return nil, err
		}
	}
	conn, err := client.Join(ctx, client.Params{
		URL: r.p.WSURL, Token: tok, Visit: ids.VisitID(visit), API: api,
		Dialer: &websocket.Dialer{
			HandshakeTimeout: 10 * time.Second,
			TLSClientConfig:  &tls.Config{InsecureSkipVerify: r.p.InsecureTLS}, //nolint:gosec // a test client against a self-signed dev server, by flag
		},
		Handlers: client.Handlers{
			OnTrack:   p.onTrack,
			OnAnswer:  p.startMedia,
			OnMessage: p.onMessage,
			OnError:   p.onError,
		},
	})
	if err != nil {
		p.closeFast()
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	p.conn = conn
	p.video, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "cam")
	p.audio, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "cam")
	var senders []*webrtc.RTPSender
	for _, t := range []webrtc.TrackLocal{p.video, p.audio} {
		s, err := conn.PC().AddTrack(t)
		if err != nil {
			p.close()
			return nil, err
		}
		senders = append(senders, s)
	}
	if err := conn.Offer(); err != nil {
		p.close()
		return nil, err
	}
	conn.Start()
	p.wg.Add(len(senders))
	for _, s := range senders {
		go func() {
			defer p.wg.Done()
			for {
				pkts, _, err := s.ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					switch pk.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.keyWanted.Store(true) // the fast path answers with its next keyframe
					}
				}
			}
		}()
	}
	return p, nil
}

func (p *peer) onMessage(m client.Message) {
	if m.Type == protocol.TypeError {
		p.run.errorf("server error %s", m.Code)
	}
}

func (p *peer) onError(err error) {
	if !errors.Is(err, client.ErrCandidate) {
		p.run.errorf("%v", err)
	}
}

// extID returns the negotiated ID of abs-capture-time on sender s.
func extID(params []webrtc.RTPHeaderExtensionParameter) uint8 {
	for _, e := range params {
		if e.URI == absCaptureTimeURI {
			return uint8(e.ID) //nolint:gosec // 1..255
		}
	}
	return 0
}

// startMedia starts the publishing loop once (after the first answer).
func (p *peer) startMedia() {
	if p.started.Swap(true) {
		return
	}
	if p.fast != nil {
		p.wg.Add(1)
		go p.startFast()
		return
	}
	var vid, aid uint8
	for _, s := range p.conn.PC().GetSenders() {
		if s.Track() == nil {
			continue
		}
		id := extID(s.GetParameters().HeaderExtensions)
		if s.Track().Kind() == webrtc.RTPCodecTypeVideo {
			vid = id
		} else {
			aid = id
		}
	}
	p.wg.Add(1)
	go p.publish(vid, aid)
}

// ntpNow is the current time as a 64-bit NTP timestamp (UQ32.32).
func ntpNow(now time.Time) uint64 {
	ns := uint64(now.UnixNano()) //nolint:gosec // after 1970
	secs := ns/1e9 + 2208988800
	frac := (ns % 1e9) << 32 / 1e9
	return secs<<32 | frac
}

func ntpTime(v uint64) time.Time {
	secs := int64(v>>32) - 2208988800
	frac := int64((v & 0xffffffff) * 1e9 >> 32)
	return time.Unix(secs, frac)
}

// publish sends the looped clips in real time until stop.
func (p *peer) publish(videoExt, audioExt uint8) {
	defer p.wg.Done()
	r := p.run
	vp := rtp.NewPacketizer(mtu, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	ap := rtp.NewPacketizer(mtu, 111, 2, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	start := time.Now()
	vNext, aNext := start, start
	vi, ai := int(r.offset.Add(7))%len(r.video.frames), 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	var ext [8]byte
	send := func(t *webrtc.TrackLocalStaticRTP, pkts []*rtp.Packet, id uint8) {
		for _, pk := range pkts {
			if id != 0 {
				binary.BigEndian.PutUint64(ext[:], ntpNow(time.Now()))
				_ = pk.Header.SetExtension(id, ext[:])
			}
			if err := t.WriteRTP(pk); err == nil {
				r.sent.Add(1)
			}
		}
	}
	for {
		next := vNext
		if aNext.Before(next) {
			next = aNext
		}
		timer.Reset(time.Until(next))
		select {
		case <-p.stop:
			return
		case <-timer.C:
		}
		now := time.Now()
		if !now.Before(vNext) {
			f := r.video.frames[vi]
			vi = (vi + 1) % len(r.video.frames)
			send(p.video, vp.Packetize(f.data, uint32(f.dur*90000/time.Second)), videoExt) //nolint:gosec // small
			vNext = vNext.Add(f.dur)
		}
		if !now.Before(aNext) {
			f := r.audio.frames[ai]
			ai = (ai + 1) % len(r.audio.frames)
			send(p.audio, ap.Packetize(f.data, uint32(f.dur*48000/time.Second)), audioExt) //nolint:gosec // small
			aNext = aNext.Add(f.dur)
		}
	}
}

// onTrack measures one received track until it ends.
func (p *peer) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	id := extID(recv.GetParameters().HeaderExtensions)
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	clock := float64(tr.Codec().ClockRate)
	st := p.run.newStream()
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		if video {
			p.gotVideo.Store(true)
		} else {
			p.gotAudio.Store(true)
		}
		var sent time.Time
		if id != 0 {
			if e := pkt.Header.GetExtension(id); len(e) >= 8 {
				sent = ntpTime(binary.BigEndian.Uint64(e))
			}
		}
		st.add(pkt.SequenceNumber, pkt.Timestamp, pkt.MarshalSize(), now, sent, clock)
		if video {
			p.sawVideo(pkt.SequenceNumber, pkt.Marker, pkt.Payload, now)
		}
	}
}

// up reports whether media flows both ways for this peer's receiving side.
func (p *peer) up() bool { return p.gotVideo.Load() && p.gotAudio.Load() }

// leave says goodbye and closes everything.
func (p *peer) leave() {
	_ = p.conn.Leave()
	p.close()
}

func (p *peer) close() {
	p.stopped.Store(true)
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.conn.Close()
	p.wg.Wait()
	p.closeFast()
}

// fastAPI sets p up for the fast media path: its own socket, read in
// batches, under an ICE mux of its own, and a WebRTC API that uses it and
// shows p the DTLS keys.
func (p *peer) fastAPI() (*webrtc.API, error) {
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: p.run.p.BindIP})
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	m := &fastMedia{p: p}
	if m.conn, err = udp.New(sock, m); err != nil {
		_ = sock.Close()
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: m.conn})
	p.fast, p.mux = m, mux
	api, err := newAPI(p.run.p.ConfigureWebRTC, func(se *webrtc.SettingEngine) {
		se.SetICEUDPMux(mux)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetDTLSKeyLogWriter(&m.keys)
	})
	if err != nil {
		p.closeFast()
		return nil, err
	}
	return api, nil
}

// closeFast closes p's mux and socket (if it has them).
func (p *peer) closeFast() {
	if p.mux != nil {
		_ = p.mux.Close()
	}
	if p.fast != nil {
		_ = p.fast.conn.Close()
	}
}

var errNoVisits = errors.New("loadtest: no visit connected")
