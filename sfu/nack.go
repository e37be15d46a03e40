package sfu

import (
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// nackHistory is how many sent packets a video stream keeps for
// retransmission: about 2.5 s of a 2 Mbps layer, 0.5 s at 10 Mbps
// (768 KiB per video stream).
const nackHistory = 512

// nackResponderFactory makes the SFU's NACK responder. It does what pion's
// nack.ResponderInterceptor does (resend what a receiver reports missing,
// as RTX when negotiated) with fixed per-stream storage, so that keeping a
// copy of each packet allocates nothing. Streams without NACK feedback
// (audio) pass through untouched.
type nackResponderFactory struct{}

func (nackResponderFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &nackResponder{streams: map[uint32]*nackStream{}}, nil
}

type nackResponder struct {
	interceptor.NoOp
	mu      sync.Mutex
	streams map[uint32]*nackStream
}

type nackEntry struct {
	seq     uint16
	valid   bool
	hdr     rtp.Header
	n       int
	payload [rtpBufSize]byte
}

// nackStream is one sent stream's history. mu serialises the stream's
// writer (storing) and the RTCP reader (resending).
type nackStream struct {
	mu      sync.Mutex
	w       interceptor.RTPWriter
	rtxSSRC uint32
	rtxPT   uint8
	rtxSeq  uint16
	ring    []nackEntry
	scratch [rtpBufSize + 2]byte
}

func hasNack(info *interceptor.StreamInfo) bool {
	for _, fb := range info.RTCPFeedback {
		if fb.Type == "nack" && fb.Parameter == "" {
			return true
		}
	}
	return false
}

func (r *nackResponder) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if !hasNack(info) {
		return w
	}
	s := &nackStream{
		w:       w,
		rtxSSRC: info.SSRCRetransmission,
		rtxPT:   info.PayloadTypeRetransmission,
		ring:    make([]nackEntry, nackHistory),
	}
	r.mu.Lock()
	r.streams[info.SSRC] = s
	r.mu.Unlock()
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		s.mu.Lock()
		e := &s.ring[h.SequenceNumber%nackHistory]
		e.seq, e.valid = h.SequenceNumber, true
		e.hdr = *h
		e.hdr.Extension, e.hdr.ExtensionProfile, e.hdr.Extensions, e.hdr.CSRC = false, 0, nil, nil
		e.hdr.Padding, e.hdr.PaddingSize = false, 0
		e.n = copy(e.payload[:], payload)
		s.mu.Unlock()
		return w.Write(h, payload, a)
	})
}

func (r *nackResponder) UnbindLocalStream(info *interceptor.StreamInfo) {
	r.mu.Lock()
	delete(r.streams, info.SSRC)
	r.mu.Unlock()
}

func (r *nackResponder) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attr, err := reader.Read(b, a)
		if err != nil {
			return 0, nil, err
		}
		if attr == nil {
			attr = interceptor.Attributes{}
		}
		pkts, err := attr.GetRTCPPackets(b[:n])
		if err != nil {
			return 0, nil, err
		}
		for _, p := range pkts {
			nk, ok := p.(*rtcp.TransportLayerNack)
			if !ok {
				continue
			}
			r.mu.Lock()
			s := r.streams[nk.MediaSSRC]
			r.mu.Unlock()
			if s == nil {
				continue
			}
			for _, pair := range nk.Nacks {
				pair.Range(func(seq uint16) bool {
					s.resend(seq)
					return true
				})
			}
		}
		return n, attr, nil
	})
}

// resend writes packet seq again, as RTX when negotiated.
func (s *nackStream) resend(seq uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &s.ring[seq%nackHistory]
	if !e.valid || e.seq != seq {
		return // too old
	}
	if s.rtxSSRC == 0 || s.rtxPT == 0 {
		_, _ = s.w.Write(&e.hdr, e.payload[:e.n], nil)
		return
	}
	h := e.hdr
	h.SSRC, h.PayloadType, h.SequenceNumber = s.rtxSSRC, s.rtxPT, s.rtxSeq
	s.rtxSeq++
	s.scratch[0], s.scratch[1] = byte(seq>>8), byte(seq)
	n := copy(s.scratch[2:], e.payload[:e.n])
	_, _ = s.w.Write(&h, s.scratch[:2+n], nil)
}

// readPrepFactory is the innermost interceptor on what the SFU receives:
// it gives each stream one reused Attributes map holding one reused
// rtp.Header, parsed once per packet, so that the interceptors above it
// (NACK generator, receiver reports, TWCC feedback) share it instead of
// each allocating and parsing their own. That map is used by the one
// goroutine that reads the stream through Pion (its layer's read loop);
// the fast path brings its own (see injected).
type readPrepFactory struct{}

func (readPrepFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &readPrep{}, nil
}

type readPrep struct{ interceptor.NoOp }

func (readPrep) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	attrs := interceptor.Attributes{}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		if inj, ok := a[injectKey{}].(*injected); ok && inj.b != nil {
			// The fast path's packet, already decrypted (fastpath.go); its
			// attributes are its own, used by its goroutine only.
			n := copy(b, inj.b)
			h, herr := a.GetRTPHeader(b[:n])
			if herr != nil {
				return 0, nil, herr
			}
			if _, herr := h.Unmarshal(b[:n]); herr != nil {
				return 0, nil, herr
			}
			return n, a, nil
		}
		n, got, err := r.Read(b, a)
		if err != nil || got != nil {
			return n, got, err
		}
		// GetRTPHeader parses into a header it caches in attrs on first
		// use; later packets are parsed into that same header.
		h, herr := attrs.GetRTPHeader(b[:n])
		if herr != nil {
			return n, nil, nil // not RTP we understand: let the others try
		}
		if _, herr := h.Unmarshal(b[:n]); herr != nil {
			return n, nil, nil
		}
		return n, attrs, nil
	})
}
