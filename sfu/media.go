package sfu

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/openvisit/openvisit/sfu/srtpkeys"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// absCaptureTimeURI is the header extension that carries the sender's
// capture time (RFC-less, WebRTC's abs-capture-time). It is the one
// extension the SFU forwards: its meaning does not depend on the connection,
// and it lets a receiver (the loadtest) measure the added latency.
const absCaptureTimeURI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"

// opusFmtp asks publishers for in-band FEC and DTX.
const opusFmtp = "minptime=10;useinbandfec=1;usedtx=1"

// Bandwidth estimation bounds for a subscriber's connection (GCC).
const (
	bweInitial = 1_000_000
	bweMin     = 50_000
	bweMax     = 20_000_000
)

// registerCodecs registers the codecs the SFU forwards: Opus (FEC, DTX),
// VP8 and H.264 (constrained baseline and baseline, packetization mode 1),
// each video codec with RTX. The set is small on purpose: layer switching
// needs the SFU to recognise keyframes, which it does for VP8 and H.264.
func registerCodecs(m *webrtc.MediaEngine) error {
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	codecs := []struct {
		c    webrtc.RTPCodecParameters
		kind webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: opusFmtp}, PayloadType: 111}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=96"}, PayloadType: 97}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}, PayloadType: 108}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=108"}, PayloadType: 109}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: fb}, PayloadType: 102}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=102"}, PayloadType: 103}, webrtc.RTPCodecTypeVideo},
	}
	for _, c := range codecs {
		if err := m.RegisterCodec(c.c, c.kind); err != nil {
			return err
		}
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: absCaptureTimeURI}, kind); err != nil {
			return err
		}
	}
	return nil
}

// bweSlot hands the estimator the cc interceptor creates inside
// NewPeerConnection to the participant that called it.
type bweSlot struct {
	mu   sync.Mutex // held across NewPeerConnection
	got  cc.BandwidthEstimator
	prep *sendPrep
	tap  *gccTap
	loss *loss // the PeerConnection's fault injector, for its sendPrep
}

// newPeerConnection creates a PeerConnection and returns it with its
// subscriber bandwidth estimator (nil if none was made) and its sendPrep.
// keys collects the connection's DTLS secrets for the fast path; its UDP
// candidates are on w's socket.
func (s *SFU) newPeerConnection(keys *srtpkeys.Handshake, w *worker) (*webrtc.PeerConnection, cc.BandwidthEstimator, *sendPrep, error) {
	se := s.se
	se.SetICEUDPMux(w.mux)
	se.SetDTLSKeyLogWriter(keys)
	se.SetDTLSServerHelloMessageHook(keys.ServerHello)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(s.media), webrtc.WithInterceptorRegistry(s.ireg), webrtc.WithSettingEngine(se))
	s.bwe.mu.Lock()
	defer s.bwe.mu.Unlock()
	s.bwe.got, s.bwe.prep, s.bwe.tap, s.bwe.loss = nil, nil, nil, nil
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	est, prep := s.bwe.got, s.bwe.prep
	s.bwe.got, s.bwe.prep, s.bwe.tap, s.bwe.loss = nil, nil, nil, nil
	return pc, est, prep, err
}

// registerInterceptors builds the interceptor chain. Registration order is
// wire-side first: the first interceptor registered writes to SRTP, the last
// is the one a downTrack's writer calls.
//
//	downTrack → sendPrep (TWCC seq, reused attributes) → GCC → TWCC feedback
//	→ NACK (generator, responder) → RTCP reports → fault injection
//	→ readPrep (receive side only) → SRTP
//
// Pion's stats interceptor is left out: nothing reads it, and it costs a
// lock and a map update per packet. GCC (withBWE) is the one part that
// allocates per packet (its feedback history is a container/list and a
// map: two allocations per packet sent).
func (s *SFU) registerInterceptors(m *webrtc.MediaEngine, reg *interceptor.Registry, withBWE bool) error {
	reg.Add(readPrepFactory{})
	reg.Add(&lossFactory{s})
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return err
	}
	// NACK: pion's generator asks publishers to resend; the SFU's own
	// responder resends to subscribers (RTX when negotiated).
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return err
	}
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	reg.Add(nackResponderFactory{})
	reg.Add(gen)
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return err
	}
	// Feedback for what publishers send (their own GCC) and the
	// transport-cc extension on every m-section.
	if err := configureTWCCFeedback(m, reg); err != nil {
		return err
	}
	if withBWE {
		ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
			return gcc.NewSendSideBWE(
				gcc.SendSideBWEInitialBitrate(bweInitial),
				gcc.SendSideBWEMinBitrate(bweMin),
				gcc.SendSideBWEMaxBitrate(bweMax),
				// Layer selection is the SFU's pacing: no queue, no
				// delay, no per-packet allocation in a pacer.
				gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
			)
		})
		if err != nil {
			return fmt.Errorf("sfu: congestion control: %w", err)
		}
		ccf.OnNewPeerConnection(func(_ string, est cc.BandwidthEstimator) { s.bwe.got = est })
		reg.Add(gccTapFactory{s})
		reg.Add(ccf)
	}
	reg.Add(sendPrepFactory{s})
	return nil
}

// gccTapFactory registers, just on the wire side of GCC, an interceptor
// that hands each stream's writer to the PeerConnection's sendPrep, so
// that sendPrep can go around GCC while a subscriber has no layer choice
// to make (GCC costs two allocations and a few µs per packet, and its
// TWCC feedback more).
type gccTapFactory struct{ s *SFU }

func (f gccTapFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	// Interceptors are built in registration order within one
	// NewPeerConnection, so sendPrep (registered last) finds this tap.
	t := &gccTap{below: map[uint32]interceptor.RTPWriter{}}
	f.s.bwe.tap = t
	return t, nil
}

type gccTap struct {
	interceptor.NoOp
	mu    sync.Mutex
	below map[uint32]interceptor.RTPWriter
}

func (t *gccTap) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	t.mu.Lock()
	t.below[info.SSRC] = w
	t.mu.Unlock()
	return w
}

func (t *gccTap) UnbindLocalStream(info *interceptor.StreamInfo) {
	t.mu.Lock()
	delete(t.below, info.SSRC)
	t.mu.Unlock()
}

// sendPrep is the outermost interceptor on what the SFU sends. It stamps
// the transport-wide sequence number (as pion's twcc.HeaderExtensionInterceptor
// does, without allocating the extension's two bytes per packet) and passes
// one reused Attributes map down, so that GCC does not make one per packet.
// A stream's writer is called by one goroutine at a time (its downTrack's
// writer), which is what makes the per-stream scratch space safe.
type sendPrepFactory struct{ s *SFU }

func (f sendPrepFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	p := &sendPrep{tap: f.s.bwe.tap, loss: f.s.bwe.loss}
	f.s.bwe.tap, f.s.bwe.loss = nil, nil
	f.s.bwe.prep = p
	if p.tap == nil {
		p.bwe.Store(true) // no GCC to go around
	}
	return p, nil
}

type sendPrep struct {
	interceptor.NoOp
	seq atomic.Uint32
	tap *gccTap // nil without GCC
	// loss is the PeerConnection's fault injector: SetSubscriberLoss sets
	// its rate through the participant's sendPrep.
	loss *loss
	// bwe routes packets through GCC, with TWCC sequence numbers; off,
	// they go around it, unstamped (so no feedback comes back either).
	bwe atomic.Bool
	// chains are the receive interceptor chains by SSRC, for the fast
	// path (sendPrep is the outermost interceptor: what it is handed is
	// the whole chain down to readPrep).
	chainMu sync.Mutex
	chains  map[uint32]interceptor.RTPReader
}

func (p *sendPrep) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	p.chainMu.Lock()
	if p.chains == nil {
		p.chains = map[uint32]interceptor.RTPReader{}
	}
	p.chains[info.SSRC] = r
	p.chainMu.Unlock()
	return r
}

func (p *sendPrep) UnbindRemoteStream(info *interceptor.StreamInfo) {
	p.chainMu.Lock()
	delete(p.chains, info.SSRC)
	p.chainMu.Unlock()
}

// remoteChain returns the receive interceptor chain of ssrc (nil if Pion
// has not bound that stream).
func (p *sendPrep) remoteChain(ssrc uint32) interceptor.RTPReader {
	p.chainMu.Lock()
	defer p.chainMu.Unlock()
	return p.chains[ssrc]
}

func (p *sendPrep) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			id = uint8(e.ID) //nolint:gosec // extension IDs are 1..255
		}
	}
	attrs := interceptor.Attributes{}
	var ext [2]byte
	var around interceptor.RTPWriter
	if p.tap != nil {
		p.tap.mu.Lock()
		around = p.tap.below[info.SSRC]
		p.tap.mu.Unlock()
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if a == nil {
			a = attrs
		}
		if around != nil && !p.bwe.Load() {
			return around.Write(h, payload, a)
		}
		if id != 0 {
			seq := uint16(p.seq.Add(1) - 1) //nolint:gosec // wraps by design
			ext[0], ext[1] = byte(seq>>8), byte(seq)
			if err := h.SetExtension(id, ext[:]); err != nil {
				return 0, err
			}
		}
		return w.Write(h, payload, a)
	})
}

// lossFactory drops outgoing RTP at a configured rate, on the wire side of
// the NACK responder so that retransmission can repair it: the node's rate
// (SetOutboundLoss) or the PeerConnection's own (SetSubscriberLoss),
// whichever is higher. At rate 0 it costs two atomic loads per packet.
type lossFactory struct{ s *SFU }

func (f *lossFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	// Built before sendPrep within one NewPeerConnection (registration
	// order), which takes it from the slot.
	l := &loss{node: &f.s.lossPermille}
	f.s.bwe.loss = l
	return l, nil
}

type loss struct {
	interceptor.NoOp
	node     *atomic.Uint32 // the SFU's rate, shared
	permille atomic.Uint32  // this PeerConnection's rate
	n        atomic.Uint32
}

func (l *loss) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if p := max(l.node.Load(), l.permille.Load()); p != 0 {
			// A deterministic spread: packet i is dropped when the running
			// count crosses a multiple of 1000/p.
			i := l.n.Add(1)
			if (i*p)%1000 < p {
				return len(payload), nil
			}
		}
		return w.Write(h, payload, a)
	})
}
