package sfu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
)

// batchSize is how many packets one step of a batchRig forwards: about a
// 720p keyframe's worth.
const batchSize = 64

// batchRig forwards a fixed batch of packets through the media path in
// process, on the calling goroutine: the node decrypts each packet and
// reads it through the publisher's receive interceptor chain as the
// receive fast path does (pion/srtp in place; readPrep, NACK generator,
// receiver reports, TWCC feedback), the layer forwards it (parse,
// de-duplication, layer filter, rewrite, queue) to every subscriber, and
// each subscriber's write goes through its send interceptor chain (the
// SFU's NACK responder, sender reports, the transport-cc stamp) to SRTP
// encryption in place, where the socket write would follow. The chains are
// the ones registerInterceptors builds for a PeerConnection, but no
// PeerConnection, socket or read loop exists: what an allocation count sees
// is this path's, however busy the machine is (the interceptors' report
// tickers are the only other goroutines; the sockets' own calls are
// sfu/udp's, checked there).
type batchRig struct {
	up     *upTrack
	l      *layer
	downs  []*downTrack
	w      []*srtpWriter
	pub    *srtp.Context // the publisher's encryption (the test's side)
	recv   *srtp.Context // the node's decryption of what the publisher sends
	chain  interceptor.RTPReader
	inj    injected
	attrs  interceptor.Attributes
	buf    [rtpBufSize]byte
	c      *forwardCounters
	plain  []byte     // the packet the publisher sends, its number rewritten
	pubHdr rtp.Header // plain's header, for the publisher's encryption
	enc    [rtpBufSize]byte
	hdr    rtp.Header
	pkt    rtp.Packet
	seq    uint16
	inline bool
}

// srtpWriter is a subscriber's stream as the downTrack writes it: the
// packet marshalled and encrypted with the subscriber's SRTP context, in
// buffers of its own. It counts what it wrote.
type srtpWriter struct {
	chain   interceptor.RTPWriter // the send interceptors, ending in encrypt
	ctx     *srtp.Context
	plain   [rtpBufSize + 64]byte
	out     [rtpBufSize + 64]byte
	written int
}

// WriteRTP is what Pion's TrackLocalWriter does: the stream's interceptor
// chain, then SRTP.
func (w *srtpWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	return w.chain.Write(h, payload, nil)
}

func (w *srtpWriter) encrypt(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	n, err := h.MarshalTo(w.plain[:])
	if err != nil {
		return 0, err
	}
	n += copy(w.plain[n:], payload)
	out, err := w.ctx.EncryptRTP(w.out[:0], w.plain[:n], h)
	if err != nil {
		return 0, err
	}
	w.written++
	return len(out), nil
}

func (w *srtpWriter) Write(b []byte) (int, error) {
	var h rtp.Header
	n, err := h.Unmarshal(b)
	if err != nil {
		return 0, err
	}
	return w.WriteRTP(&h, b[n:])
}

// Extension IDs and payload types of the rig's streams.
const (
	batchTWCCID, batchAbsID = 4, 3
	batchPubPT, batchSubPT  = 100, 96
)

// interceptorChain builds the interceptors the SFU gives one
// PeerConnection (registerInterceptors; GCC when withBWE) and returns them with
// that PeerConnection's sendPrep, which holds its receive chains. They are
// closed when the test ends.
func interceptorChain(tb testing.TB, withBWE bool) (interceptor.Interceptor, *sendPrep) {
	tb.Helper()
	s := &SFU{}
	reg := &interceptor.Registry{}
	if err := s.registerInterceptors(&webrtc.MediaEngine{}, reg, withBWE); err != nil {
		tb.Fatal(err)
	}
	ic, err := reg.Build("batch")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ic.Close() })
	if withBWE {
		s.bwe.prep.bwe.Store(true) // through GCC, as once it has an estimate
	}
	return ic, s.bwe.prep
}

// streamInfo is a VP8 stream as negotiated with a browser: NACK, PLI,
// transport-cc and abs-capture-time.
func streamInfo(ssrc uint32, pt uint8) *interceptor.StreamInfo {
	return &interceptor.StreamInfo{
		SSRC: ssrc, PayloadType: pt, MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{
			{URI: sdp.TransportCCURI, ID: batchTWCCID}, {URI: absCaptureTimeURI, ID: batchAbsID}},
		RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "transport-cc"}},
	}
}

// newSRTP is an SRTP context of profile p (0: AEAD_AES_256_GCM, the
// SFU's first choice in DTLS-SRTP, which Pion peers negotiate) with a
// fixed test key.
func newSRTP(tb testing.TB, p srtp.ProtectionProfile) *srtp.Context {
	tb.Helper()
	if p == 0 {
		p = srtp.ProtectionProfileAeadAes256Gcm
	}
	kl, err := p.KeyLen()
	if err != nil {
		tb.Fatal(err)
	}
	sl, err := p.SaltLen()
	if err != nil {
		tb.Fatal(err)
	}
	key, salt := make([]byte, kl), make([]byte, sl)
	for i := range key {
		key[i] = byte(i + 1)
	}
	ctx, err := srtp.CreateContext(key, salt, p)
	if err != nil {
		tb.Fatal(err)
	}
	return ctx
}

// batchOpts shape a batchRig: how many subscribers, whether the read loop
// writes inline (else the test drains their queues, as their writers
// would), and whether their send chains include GCC.
type batchOpts struct {
	subs        int
	inline, gcc bool
	profile     srtp.ProtectionProfile // every stream's (0: see newSRTP)
}

// newBatchRig builds a publisher's video layer with o.subs subscribers,
// bound as Pion would bind them (a ring, an SSRC, the negotiated payload
// type and abs-capture-time extension). c counts what is forwarded; rigs
// may share one, as the rooms of a node share the node's.
func newBatchRig(tb testing.TB, o batchOpts, c *forwardCounters) *batchRig {
	tb.Helper()
	owner := &participant{id: "pub", log: testLogger(tb)}
	up := &upTrack{
		owner: owner, id: "video-pub", kind: webrtc.RTPCodecTypeVideo,
		codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		ck:    codecVP8, absID: 5, start: time.Now(),
	}
	empty := []*downTrack{}
	up.downs.Store(&empty)
	r := &batchRig{up: up, l: &layer{up: up, q: 0, ssrc: 42}, c: c, inline: o.inline,
		pub: newSRTP(tb, o.profile), recv: newSRTP(tb, o.profile)}
	up.layers[0].Store(r.l)
	for i := range o.subs {
		sub := &participant{id: ids.ParticipantID(fmt.Sprintf("sub-%d", i)), log: testLogger(tb)}
		sub.inline.Store(o.inline)
		d := newDownTrack(up, sub)
		ssrc := uint32(1000 + i) //nolint:gosec // small
		w := &srtpWriter{ctx: newSRTP(tb, o.profile)}
		ic, _ := interceptorChain(tb, o.gcc)
		w.chain = ic.BindLocalStream(streamInfo(ssrc, batchSubPT), interceptor.RTPWriterFunc(w.encrypt))
		tb.Cleanup(func() { ic.UnbindLocalStream(streamInfo(ssrc, batchSubPT)) })
		d.bound, d.writer, d.ssrc, d.pt, d.absID, d.clock = true, w, ssrc, batchSubPT, batchAbsID, 90000
		d.ring = make([]slot, videoQueue)
		up.addDown(d)
		r.downs, r.w = append(r.downs, d), append(r.w, w)
	}
	ic, prep := interceptorChain(tb, false)
	ic.BindRemoteStream(streamInfo(r.l.ssrc, batchPubPT), interceptor.RTPReaderFunc(
		func([]byte, interceptor.Attributes) (int, interceptor.Attributes, error) {
			return 0, nil, errors.New("the rig reads only what it injects")
		}))
	r.chain = prep.remoteChain(r.l.ssrc)
	r.attrs = interceptor.Attributes{injectKey{}: &r.inj}
	r.plain = keyframePacket(tb)
	if _, err := r.pubHdr.Unmarshal(r.plain); err != nil {
		tb.Fatal(err)
	}
	return r
}

// keyframePacket is a VP8 keyframe packet (descriptor, frame tag, start
// code, 1280×720) with an abs-capture-time extension, as a browser sends.
func keyframePacket(tb testing.TB) []byte {
	tb.Helper()
	payload := make([]byte, 1100)
	copy(payload, []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02})
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 100, SequenceNumber: 1, Timestamp: 3000, SSRC: 42}, Payload: payload}
	if err := p.Header.SetExtension(5, make([]byte, 8)); err != nil {
		tb.Fatal(err)
	}
	if err := p.Header.SetExtension(batchTWCCID, []byte{0, 0}); err != nil {
		tb.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// step forwards one batch: each packet is encrypted by the publisher (the
// test's part), then decrypted, forwarded and written by the node's path.
// Queued writes are drained after each packet, as the writer goroutine
// would. It returns how many packets the node failed to take.
func (r *batchRig) step() (failed int) {
	for range batchSize {
		r.seq++
		binary.BigEndian.PutUint16(r.plain[2:], r.seq)
		r.pubHdr.SequenceNumber = r.seq
		enc, err := r.pub.EncryptRTP(r.enc[:0], r.plain, &r.pubHdr)
		if err != nil {
			return batchSize
		}
		plain, err := r.recv.DecryptRTP(enc, enc, &r.hdr) // in place, as the fast path does
		if err != nil {
			failed++
			continue
		}
		r.inj.b = plain
		n, _, err := r.chain.Read(r.buf[:], r.attrs)
		r.inj.b = nil
		if err != nil {
			failed++
			continue
		}
		r.l.mu.Lock()
		r.l.forwardPacket(&r.pkt, r.buf[:n], r.c)
		r.l.mu.Unlock()
		if !r.inline {
			for _, d := range r.downs {
				d.drain()
			}
		}
	}
	return failed
}

// written is how many packets the subscribers' streams wrote in all.
func (r *batchRig) written() int {
	n := 0
	for _, w := range r.w {
		n += w.written
	}
	return n
}

// TestBatchRigForwards checks the rig itself: every packet of a batch is
// decrypted, reaches every subscriber renumbered into its own stream and
// is encrypted there, so that a zero allocation count is one of real work.
func TestBatchRigForwards(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			r := newBatchRig(t, batchOpts{subs: 3, inline: inline}, &forwardCounters{})
			if failed := r.step(); failed != 0 {
				t.Fatalf("%d of %d packets failed to decrypt", failed, batchSize)
			}
			if got, want := r.written(), 3*batchSize; got != want {
				t.Fatalf("subscribers wrote %d packets, want %d", got, want)
			}
			if got := r.c.packets.Load(); got != 3*batchSize {
				t.Fatalf("counted %d forwarded packets, want %d", got, 3*batchSize)
			}
			for i, d := range r.downs {
				if d.lastSeq != r.downs[0].lastSeq || d.ssrc != uint32(1000+i) || d.current.Load() != 0 { //nolint:gosec // small
					t.Errorf("subscriber %d: last seq %d ssrc %d layer %d", i, d.lastSeq, d.ssrc, d.current.Load())
				}
			}
		})
	}
}

// BenchmarkForwardBatch is the in-process path's cost per packet (per
// subscriber and core: core-ns/pkt/sub), without sockets. Each parallel
// goroutine forwards its own room: run with -cpu 1,2 — a per-packet cost
// that rises with two workers shows a shared lock or a contended cache line
// on the hot path. "own-counters" gives each worker its own forwarding
// counters, as the SFU's workers have (sfu/workers.go); "shared-counters"
// shares one set among the rooms, which shows what sharing would cost.
// The streams use AEAD_AES_256_GCM, what the SFU negotiates with a peer
// that offers it; "aes-cm" is a peer that offers only
// AES_CM_128_HMAC_SHA1_80.
func BenchmarkForwardBatch(b *testing.B) {
	const subs = 3
	for _, v := range []struct {
		name    string
		shared  bool
		profile srtp.ProtectionProfile
	}{
		{"shared-counters", true, 0},
		{"own-counters", false, 0},
		{"own-counters/aes-cm", false, srtp.ProtectionProfileAes128CmHmacSha1_80},
	} {
		shared := v.shared
		b.Run(v.name, func(b *testing.B) {
			var node forwardCounters
			var mu sync.Mutex
			b.ReportAllocs()
			cpu0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				c := &node
				if !shared {
					c = &forwardCounters{}
				}
				mu.Lock()
				r := newBatchRig(b, batchOpts{subs: subs, inline: true, profile: v.profile}, c)
				mu.Unlock()
				for pb.Next() {
					r.step()
				}
			})
			// Wall time × workers: what one packet to one subscriber costs
			// a core. It stays flat from -cpu 1 to 2 when workers do not
			// contend.
			perCore := float64(b.Elapsed().Nanoseconds()) * float64(runtime.GOMAXPROCS(0))
			b.ReportMetric(perCore/float64(b.N*batchSize*subs), "core-ns/pkt/sub")
			// The process's own CPU time (user+system) per packet per
			// subscriber: unlike wall time × workers, other processes on a
			// busy machine do not inflate it (their cache and memory
			// traffic still can).
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*batchSize*subs), "cpu-ns/pkt/sub")
		})
	}
}
