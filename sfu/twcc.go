package sfu

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// twccInterval is how often transport-wide feedback goes to a publisher.
const twccInterval = 100 * time.Millisecond

// configureTWCCFeedback negotiates transport-cc on every m-section and
// registers twccFeedbackFactory, which sends publishers the feedback their
// congestion control needs (what webrtc.ConfigureTWCCSender does with
// Pion's interceptor).
//
// Pion's own interceptor hands every received packet to its feedback
// goroutine over an unbuffered channel: a goroutine wake-up per packet on
// the receive path, which was a large part of what the fast path
// (fastpath.go) is there to remove. This one records under a mutex in the
// reader and leaves only the feedback to its goroutine.
func configureTWCCFeedback(m *webrtc.MediaEngine, reg *interceptor.Registry) error {
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		m.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, kind)
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
			return err
		}
	}
	reg.Add(twccFeedbackFactory{})
	return nil
}

type twccFeedbackFactory struct{}

func (twccFeedbackFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &twccFeedback{rec: twcc.NewRecorder(rand.Uint32()), start: time.Now(), done: make(chan struct{})}, nil //nolint:gosec // an SSRC, not a secret
}

// twccFeedback records the arrival of every received packet that carries a
// transport-wide sequence number and sends the feedback every
// twccInterval. Lifecycle: BindRTCPWriter starts the sender goroutine,
// Close stops it.
type twccFeedback struct {
	interceptor.NoOp
	mu     sync.Mutex // guards rec
	rec    *twcc.Recorder
	start  time.Time
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	closed bool // under mu: no goroutine is started after Close
}

func (t *twccFeedback) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return w
	}
	t.wg.Add(1)
	go t.send(w)
	return w
}

// send writes the feedback every twccInterval until Close.
func (t *twccFeedback) send(w interceptor.RTCPWriter) {
	defer t.wg.Done()
	tick := time.NewTicker(twccInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		pkts := t.rec.BuildFeedbackPacket()
		t.mu.Unlock()
		if len(pkts) > 0 {
			_, _ = w.Write(pkts, nil) // a closing connection; the next tick or Close ends it
		}
	}
}

func (t *twccFeedback) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			id = uint8(e.ID) //nolint:gosec // extension IDs are 1..255
		}
	}
	if id == 0 {
		return r
	}
	ssrc := info.SSRC
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attr, err := r.Read(b, a)
		if err != nil {
			return 0, nil, err
		}
		if attr == nil {
			attr = interceptor.Attributes{}
		}
		h, err := attr.GetRTPHeader(b[:n])
		if err != nil {
			return 0, nil, err
		}
		if ext := h.GetExtension(id); len(ext) >= 2 {
			var tcc rtp.TransportCCExtension
			if err := tcc.Unmarshal(ext); err == nil {
				at := time.Since(t.start).Microseconds()
				t.mu.Lock()
				t.rec.Record(ssrc, tcc.TransportSequence, at)
				t.mu.Unlock()
			}
		}
		return n, attr, nil
	})
}

func (t *twccFeedback) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		close(t.done)
	})
	t.wg.Wait()
	return nil
}
