package loadtest

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/sfu/srtpkeys"
	"github.com/openvisit/openvisit/sfu/udp"
)

// The load generator's media path. Pion does each participant's ICE, DTLS
// and RTCP; its media goes around Pion: the clips are packetized once per
// run (preClip), and a few sender goroutines (one per GOMAXPROCS, each
// waking every sendTick for all of its participants) stamp each packet's
// header, encrypt it in place and send a participant's due packets in
// one sendmmsg, a frame's packets as one UDP GSO message; what the SFU
// forwards is read in batches (recvmmsg, GRO), decrypted and counted on
// the socket's read goroutine. The socket is the SFU's own media socket
// (sfu/udp): raw system calls, so no sysmon wake-ups, and nothing
// allocated per read or send. Per
// packet that leaves out Pion's track writer, interceptors and SRTP
// session goroutines, and a timer per participant, which is what made
// the clients cost more CPU than the server they measured.

// sendTick is how often a sender goroutine sends what is due.
const sendTick = 5 * time.Millisecond

// datagramSize bounds a media datagram (RTP of an MTU-sized payload).
const datagramSize = 1500

// preFrame is one frame of a clip, packetized: RTP payloads, the last
// with the marker bit.
type preFrame struct {
	payloads [][]byte
	ticks    uint32 // RTP timestamp increment
	dur      time.Duration
	key      bool // a VP8 keyframe
}

// preClip packetizes c's frames once, as a publisher would.
func preClip(c clip, p rtp.Payloader) []preFrame {
	out := make([]preFrame, len(c.frames))
	for i, f := range c.frames {
		out[i] = preFrame{
			payloads: p.Payload(mtu, f.data),
			ticks:    uint32((int64(f.dur)*int64(c.clock) + int64(time.Second)/2) / int64(time.Second)), //nolint:gosec // small, rounded
			dur:      f.dur,
			key:      c.clock == 90000 && len(f.data) > 0 && f.data[0]&0x01 == 0,
		}
	}
	return out
}

func (r *runner) preEncode() {
	r.preVideo = preClip(r.video, &codecs.VP8Payloader{EnablePictureID: true})
	r.preAudio = preClip(r.audio, &codecs.OpusPayloader{})
}

// fastMedia is one participant's media path.
type fastMedia struct {
	p    *peer
	conn *udp.Conn
	keys srtpkeys.Handshake // as the DTLS client: key log, and Sniff in Handle

	once   sync.Once
	ok     atomic.Bool
	tx, rx *srtp.Context // tx: sender goroutine only; rx: read goroutine only

	// read goroutine only
	hdr     rtp.Header
	plain   [datagramSize]byte
	streams map[uint32]*rxStream
}

// rxStream is one stream the participant receives.
type rxStream struct {
	st    *stream
	video bool
	clock float64
	ext   uint8 // abs-capture-time's ID, 0 if not negotiated
}

// ready derives the SRTP contexts once the handshake showed the keys.
func (m *fastMedia) ready() bool {
	if m.ok.Load() {
		return true
	}
	if !m.keys.Complete() {
		return false
	}
	m.once.Do(func() {
		tx, rx, err := m.keys.ClientContexts()
		if err != nil {
			m.p.run.errorf("%v", err)
			return
		}
		m.tx, m.rx = tx, rx
		m.ok.Store(true)
	})
	return m.ok.Load()
}

// Handle is the socket's handler (udp.Handler): it takes the SFU's SRTP media (anything
// it can decrypt of a VP8 or Opus stream) and leaves the rest to Pion,
// noting the ServerHello on its way.
func (m *fastMedia) Handle(b []byte, _ netip.AddrPort) bool {
	if len(b) == 0 {
		return false
	}
	if b[0] >= 20 && b[0] <= 63 { // DTLS (RFC 7983)
		if !m.keys.Complete() {
			m.keys.Sniff(b)
		}
		return false
	}
	if len(b) < 12 || b[0]&0xc0 != 0x80 {
		return false
	}
	if pt := b[1] & 0x7f; pt >= 64 && pt <= 95 {
		return false // RTCP: Pion's
	}
	if !m.ready() {
		return false
	}
	s := m.stream(binary.BigEndian.Uint32(b[8:12]), b[1]&0x7f)
	if s == nil {
		return false
	}
	plain, err := m.rx.DecryptRTP(m.plain[:0], b, &m.hdr)
	if err != nil {
		return false
	}
	m.received(s, plain, time.Now())
	return true
}

// received counts one decrypted packet of s.
func (m *fastMedia) received(s *rxStream, plain []byte, now time.Time) {
	h := &m.hdr
	var sent time.Time
	if s.ext != 0 {
		if e := h.GetExtension(s.ext); len(e) >= 8 {
			sent = ntpTime(binary.BigEndian.Uint64(e))
		}
	}
	s.st.add(h.SequenceNumber, h.Timestamp, len(plain), now, sent, s.clock)
	m.p.run.fastRecv.Add(1)
	if s.video {
		m.p.gotVideo.Store(true)
		hl := h.MarshalSize()
		if hl <= len(plain) {
			m.p.sawVideo(h.SequenceNumber, h.Marker, plain[hl:], now)
		}
	} else {
		m.p.gotAudio.Store(true)
	}
}

// stream returns the receiving stream of ssrc, made on its first packet
// from what was negotiated for its payload type; nil for what the fast
// path does not count (RTX, unknown payload types).
func (m *fastMedia) stream(ssrc uint32, pt uint8) *rxStream {
	if s := m.streams[ssrc]; s != nil {
		return s
	}
	for _, t := range m.p.conn.PC().GetTransceivers() {
		r := t.Receiver()
		if r == nil {
			continue
		}
		prm := r.GetParameters()
		for _, c := range prm.Codecs {
			if uint8(c.PayloadType) != pt { //nolint:gosec // 0..127
				continue
			}
			mt := strings.ToLower(c.MimeType)
			if mt != strings.ToLower(webrtc.MimeTypeVP8) && mt != strings.ToLower(webrtc.MimeTypeOpus) {
				return nil
			}
			s := &rxStream{st: m.p.run.newStream(), video: mt == strings.ToLower(webrtc.MimeTypeVP8),
				clock: float64(c.ClockRate), ext: extID(prm.HeaderExtensions)}
			if m.streams == nil {
				m.streams = map[uint32]*rxStream{}
			}
			m.streams[ssrc] = s
			return s
		}
	}
	return nil
}

// txStream is one stream the participant sends (sender goroutine only).
type txStream struct {
	frames []preFrame
	i      int
	next   time.Time
	hdr    rtp.Header
	ext    [8]byte
	extID  uint8
}

// fastSender is one participant's sending state (sender goroutine only).
type fastSender struct {
	m       *fastMedia
	to      netip.AddrPort
	streams [2]txStream // video, audio
	bufs    [][]byte    // datagram buffers
	out     [][]byte    // this tick's datagrams, frame after frame
	frameAt int         // bufs used by this tick
	scratch rtp.Header  // EncryptRTP's parse of a packet
	stopped *atomic.Bool
}

// errNotConnected: the participant's transports never came up.
var errNotConnected = errors.New("loadtest: fast path: not connected in time")

// newFastSender waits until p's DTLS is up (keys, selected pair) and sets
// up its streams from what its senders negotiated.
func (p *peer) newFastSender(timeout time.Duration) (*fastSender, error) {
	m := p.fast
	deadline := time.Now().Add(timeout)
	var to netip.AddrPort
	for {
		if !to.IsValid() {
			to = p.selectedRemote()
		}
		if to.IsValid() && m.ready() {
			break
		}
		if time.Now().After(deadline) {
			return nil, errNotConnected
		}
		select {
		case <-p.stop:
			return nil, errNotConnected
		case <-time.After(20 * time.Millisecond):
		}
	}
	r := p.run
	fs := &fastSender{m: m, to: to, stopped: &p.stopped}
	now := time.Now()
	for _, s := range p.conn.PC().GetSenders() {
		if s.Track() == nil {
			continue
		}
		prm := s.GetParameters()
		if len(prm.Encodings) == 0 || len(prm.Codecs) == 0 {
			return nil, errors.New("loadtest: fast path: sender not negotiated")
		}
		ts := &fs.streams[1]
		ts.frames = r.preAudio
		if s.Track().Kind() == webrtc.RTPCodecTypeVideo {
			ts = &fs.streams[0]
			ts.frames = r.preVideo
			ts.i = int(r.offset.Add(7)) % len(ts.frames)
		}
		ts.next = now
		ts.extID = extID(prm.HeaderExtensions)
		ts.hdr = rtp.Header{Version: 2, PayloadType: uint8(prm.Codecs[0].PayloadType), //nolint:gosec // 0..127
			SSRC: uint32(prm.Encodings[0].SSRC), SequenceNumber: uint16(now.UnixNano()), Timestamp: uint32(now.UnixNano() >> 8)} //nolint:gosec // random-ish starts
	}
	return fs, nil
}

// selectedRemote is the SFU's address on p's selected ICE pair (invalid
// before there is one).
func (p *peer) selectedRemote() netip.AddrPort {
	for _, s := range p.conn.PC().GetSenders() {
		t := s.Transport()
		// Only once DTLS is up: Pion sets the ICE transport's fields in
		// Start without a lock, and DTLS starts after it returns.
		if t == nil || t.State() != webrtc.DTLSTransportStateConnected || t.ICETransport() == nil {
			continue
		}
		pair, err := t.ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil || pair.Remote == nil {
			continue
		}
		ip, err := netip.ParseAddr(pair.Remote.Address)
		if err != nil {
			continue
		}
		return netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
	}
	return netip.AddrPort{}
}

// tick sends every frame of fs due by now; it returns the packets sent.
func (fs *fastSender) tick(now time.Time) int {
	fs.out, fs.frameAt = fs.out[:0], 0
	for k := range fs.streams {
		ts := &fs.streams[k]
		for ts.frames != nil && !now.Before(ts.next) {
			fs.frame(ts)
		}
	}
	if len(fs.out) == 0 {
		return 0
	}
	n, err := fs.m.conn.WriteBurst(fs.out, fs.to)
	if err != nil && !fs.stopped.Load() {
		fs.m.p.run.errorf("loadtest: send: %v", err)
	}
	return n
}

// frame stamps, encrypts and queues ts's next frame.
func (fs *fastSender) frame(ts *txStream) {
	if ts == &fs.streams[0] && fs.m.p.keyWanted.Swap(false) {
		ts.i = nextKey(ts.frames, ts.i) // the SFU asked for a keyframe (PLI/FIR)
	}
	f := &ts.frames[ts.i]
	ts.i = (ts.i + 1) % len(ts.frames)
	ts.next = ts.next.Add(f.dur)
	for j, pl := range f.payloads {
		h := &ts.hdr
		h.Marker = j == len(f.payloads)-1
		if ts.extID != 0 {
			binary.BigEndian.PutUint64(ts.ext[:], ntpNow(time.Now()))
			_ = h.SetExtension(ts.extID, ts.ext[:])
		}
		buf := fs.buf(fs.frameAt)
		fs.frameAt++
		hl, err := h.MarshalTo(buf)
		if err == nil && hl+len(pl)+32 <= cap(buf) {
			n := hl + copy(buf[hl:cap(buf)], pl)
			if enc, err := fs.m.tx.EncryptRTP(buf[:n], buf[:n], &fs.scratch); err == nil {
				fs.out = append(fs.out, enc)
			}
		}
		h.SequenceNumber++
	}
	ts.hdr.Timestamp += f.ticks
}

// nextKey is the index of the first keyframe in frames from i on,
// looping (i if there is none).
func nextKey(frames []preFrame, i int) int {
	for k := range frames {
		if j := (i + k) % len(frames); frames[j].key {
			return j
		}
	}
	return i
}

// buf returns datagram buffer i, made on first use.
func (fs *fastSender) buf(i int) []byte {
	for len(fs.bufs) <= i {
		fs.bufs = append(fs.bufs, make([]byte, datagramSize+64))
	}
	return fs.bufs[i][:datagramSize+64]
}

// senderShard is one sender goroutine's participants.
type senderShard struct {
	mu    sync.Mutex
	peers []*fastSender
}

// startSenders starts n sender goroutines, which run until done closes.
func (r *runner) startSenders(n int, done <-chan struct{}) {
	r.shards = make([]*senderShard, n)
	for i := range r.shards {
		sh := &senderShard{}
		r.shards[i] = sh
		r.senderWG.Add(1)
		go func() {
			defer r.senderWG.Done()
			r.sendLoop(sh, done)
		}()
	}
}

// addSender hands fs to a sender goroutine.
func (r *runner) addSender(fs *fastSender) {
	sh := r.shards[int(r.nextShard.Add(1))%len(r.shards)]
	sh.mu.Lock()
	sh.peers = append(sh.peers, fs)
	sh.mu.Unlock()
}

func (r *runner) sendLoop(sh *senderShard, done <-chan struct{}) {
	t := time.NewTicker(sendTick)
	defer t.Stop()
	var peers []*fastSender
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		sh.mu.Lock()
		peers = append(peers[:0], sh.peers...)
		sh.mu.Unlock()
		now := time.Now()
		n := 0
		for _, fs := range peers {
			if !fs.stopped.Load() {
				n += fs.tick(now)
			}
		}
		r.sent.Add(uint64(n)) //nolint:gosec // a count
	}
}

// startFast starts p's media on the fast path once its DTLS is up.
func (p *peer) startFast() {
	defer p.wg.Done()
	fs, err := p.newFastSender(30 * time.Second)
	if err != nil {
		if !p.stopped.Load() {
			p.run.errorf("%v", err)
		}
		return
	}
	p.run.addSender(fs)
}
