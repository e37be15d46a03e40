package sfu

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// The receive fast path. Pion hands a received RTP packet through four
// goroutines (UDP mux → ICE candidate → DTLS/SRTP demux → SRTP session →
// track reader), each with a buffer, a lock and a wake-up; on this machine
// that was about half the CPU the SFU spent per forwarded packet. The fast
// path takes a publisher's media packets on the UDP mux's own read
// goroutine instead (the media socket, sfu/udp, offers it every datagram
// first): it decrypts them with the connection's SRTP keys (sfu/srtpkeys),
// runs them through the same receive interceptors Pion would (TWCC feedback, NACK generation, receiver reports: sendPrep
// captured each stream's chain, and readPrep takes the packet from the
// chain's attributes instead of from SRTP), and forwards them, all without
// a hand-off.
//
// What it does not know goes to Pion as before: STUN, DTLS, RTCP, peers and
// streams it has no keys or chain for (yet), and every packet of a stream
// until one of its packets authenticates. After that the stream is the fast
// path's: a packet that fails authentication or the replay check is
// dropped, as Pion's SRTP session would drop it (passing it on would let
// Pion, whose replay window has not seen the stream since, accept a
// replay).
//
// One packet in pionSyncEvery of a stream still goes through Pion, so that
// Pion's SRTP context keeps track of the stream's rollover counter: Pion
// guesses it from the last packet it decrypted, and after more than 32k
// packets unseen the guess can be wrong, which would stop the stream's
// media for good should it ever leave the fast path (ICE moving to TCP).
//
// Each forwarding worker (workers.go) has its own fast path on its own
// socket. Everything in it that is per packet runs on that worker's one
// mux read goroutine:
// the SRTP contexts, the scratch buffers and the per-stream state. A
// layer's own read loop (which still gets whatever Pion delivers) and the
// fast path forward under the layer's mutex.
type fastPath struct {
	mu    sync.Mutex // serialises writers of peers
	peers atomic.Pointer[map[netip.AddrPort]*fastPeer]
	// handled counts packets the fast path forwarded or dropped; fwd are
	// its worker's forwarding counters.
	handled atomic.Uint64
	fwd     *forwardCounters
}

// fastPeer is one PeerConnection as the fast path sees it: its address on
// the mux socket, its SRTP context for what it sends and its streams.
type fastPeer struct {
	p    *participant
	addr netip.AddrPort
	ctx  *srtp.Context // mux goroutine only
	// streams by SSRC, copy on write; misses notes when an unknown SSRC
	// was last looked up (mux goroutine only), so that a stream the SFU
	// does not forward costs one lookup per missLookup, not one per packet.
	streams atomic.Pointer[map[uint32]*fastStream]
	misses  map[uint32]time.Time
	hdr     rtp.Header
	plain   [rtpBufSize]byte
}

// missLookup is how often an unknown SSRC of a known peer is looked up.
const missLookup = 100 * time.Millisecond

// maxMisses bounds the remembered unknown SSRCs of one peer.
const maxMisses = 64

// fastStream is one received SSRC: a layer's media or its RTX repairs.
type fastStream struct {
	l        *layer
	rtx      bool   // RTX: unwrapped to the layer's own numbering before forwarding
	mediaPT  uint8  // the layer's payload type, for unwrapped RTX
	ssrc     uint32 // the layer's SSRC, for unwrapped RTX
	chain    interceptor.RTPReader
	attrs    interceptor.Attributes // carries inj to readPrep
	inj      injected
	verified bool // a packet authenticated: failures are dropped from now on
	// sincePion counts packets taken since one last went through Pion.
	sincePion uint32
	buf       [rtpBufSize]byte
	pkt       rtp.Packet
}

// pionSyncEvery: one packet in this many of a fast-path stream goes
// through Pion instead, well within the 32k packets after which Pion's
// rollover guess could go wrong.
const pionSyncEvery = 8192

// injected is the packet the fast path hands readPrep through the
// interceptor chain's attributes.
type injected struct{ b []byte }

// injectKey is the attributes key under which readPrep finds *injected.
type injectKey struct{}

// canonical maps IPv4-in-IPv6 addresses to IPv4, as the ICE mux does.
func canonical(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Handle implements udp.Handler: it takes b, received from from on the
// media socket, if it is a packet of a stream the fast path knows, and
// reports whether it did (forwarded or dropped). It allocates nothing in
// steady state.
func (f *fastPath) Handle(b []byte, from netip.AddrPort) bool {
	// RTP (version 2) and not RTCP (RFC 5761: payload types 64-95).
	if len(b) < 12 || b[0]&0xc0 != 0x80 {
		return false
	}
	if pt := b[1] & 0x7f; pt >= 64 && pt <= 95 {
		return false
	}
	peers := f.peers.Load()
	if peers == nil {
		return false
	}
	fp := (*peers)[canonical(from)]
	if fp == nil {
		return false
	}
	s := fp.stream(binary.BigEndian.Uint32(b[8:12]))
	if s == nil {
		return false
	}
	if s.verified {
		if s.sincePion++; s.sincePion >= pionSyncEvery {
			s.sincePion = 0
			return false // Pion's turn (see pionSyncEvery)
		}
	}
	// A verified stream's packets decrypt in place, in the socket's own
	// buffer (nobody else reads it once the fast path took it). Until then
	// into fp.plain: a packet that fails goes to Pion as it arrived (AES-GCM
	// clears its output on failure).
	dst := fp.plain[:0]
	if s.verified {
		dst = b
	}
	plain, err := fp.ctx.DecryptRTP(dst, b, &fp.hdr)
	if err != nil {
		if !s.verified {
			return false // not known to be ours yet: Pion decides
		}
		f.handled.Add(1)
		return true // forged, corrupted or replayed: dropped
	}
	s.verified = true
	f.handled.Add(1)
	l := s.l
	s.inj.b = plain
	n, _, err := s.chain.Read(s.buf[:], s.attrs)
	s.inj.b = nil
	if err != nil || n < 12 {
		return true
	}
	pkt := s.buf[:n]
	if s.rtx {
		if pkt = unwrapRTX(pkt, s.mediaPT, s.ssrc); pkt == nil {
			return true // a padding probe: the chain has counted it
		}
	}
	l.mu.Lock()
	l.forwardPacket(&s.pkt, pkt, f.fwd)
	l.mu.Unlock()
	return true
}

// stream returns the peer's stream for ssrc, looking it up among the
// participant's layers (media or RTX) when it is not known yet.
func (fp *fastPeer) stream(ssrc uint32) *fastStream {
	if s := (*fp.streams.Load())[ssrc]; s != nil && !s.l.ended.Load() {
		return s
	}
	now := time.Now()
	if t, ok := fp.misses[ssrc]; ok && now.Sub(t) < missLookup {
		return nil
	}
	s := fp.p.fastStreamFor(ssrc)
	if s == nil {
		if len(fp.misses) >= maxMisses {
			clear(fp.misses)
		}
		fp.misses[ssrc] = now
		return nil
	}
	delete(fp.misses, ssrc)
	old := *fp.streams.Load()
	next := make(map[uint32]*fastStream, len(old)+1)
	for k, v := range old {
		if v.l.ended.Load() {
			continue // its layer ended; a new one may reuse the SSRC
		}
		next[k] = v
	}
	next[ssrc] = s
	fp.streams.Store(&next)
	return s
}

// fastStreamFor builds the fast path's stream for ssrc: a layer of a track
// p publishes whose media or RTX SSRC it is, once Pion has bound that
// stream's interceptor chain. Nil when there is none (yet).
func (p *participant) fastStreamFor(ssrc uint32) *fastStream {
	if p.prep == nil {
		return nil
	}
	chain := p.prep.remoteChain(ssrc)
	if chain == nil {
		return nil
	}
	for _, l := range *p.layers.Load() {
		if l.ended.Load() {
			continue
		}
		media := l.ssrc == ssrc
		if !media && uint32(l.remote.RtxSSRC()) != ssrc {
			continue
		}
		s := &fastStream{l: l, rtx: !media, mediaPT: uint8(l.remote.PayloadType()), ssrc: l.ssrc, chain: chain}
		s.attrs = interceptor.Attributes{injectKey{}: &s.inj}
		return s
	}
	return nil
}

// unwrapRTX turns an RTX packet (RFC 4588) in b into the packet it
// repairs, in place: the original sequence number (the payload's first two
// bytes) back in the header, the media payload type and SSRC. Nil for a
// packet with no media payload (a bandwidth probe) or a malformed one.
func unwrapRTX(b []byte, mediaPT uint8, ssrc uint32) []byte {
	hlen := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < hlen+4 {
			return nil
		}
		hlen += 4 * (1 + int(binary.BigEndian.Uint16(b[hlen+2:hlen+4])))
	}
	pad := 0
	if b[0]&0x20 != 0 {
		pad = int(b[len(b)-1])
	}
	if len(b)-hlen-pad < 2+1 {
		return nil
	}
	b[1] = b[1]&0x80 | mediaPT&0x7f
	b[2], b[3] = b[hlen], b[hlen+1]
	binary.BigEndian.PutUint32(b[8:12], ssrc)
	copy(b[hlen:], b[hlen+2:])
	return b[:len(b)-2]
}

// addPeer puts p, reached at addr, on the fast path, with the SRTP context
// newCtx makes for what p sends. When ICE moved p to another address, p
// keeps its context and streams: the context's rollover counters and
// replay windows are the streams' only ones since the fast path took them
// (Pion's session has not seen their packets since).
func (f *fastPath) addPeer(p *participant, addr netip.AddrPort, newCtx func() (*srtp.Context, error)) error {
	addr = canonical(addr)
	f.mu.Lock()
	defer f.mu.Unlock()
	var old *fastPeer
	if peers := f.peers.Load(); peers != nil {
		for _, fp := range *peers {
			if fp.p == p {
				old = fp
			}
		}
	}
	if old != nil && old.addr == addr {
		return nil
	}
	fp := &fastPeer{p: p, addr: addr, misses: map[uint32]time.Time{}}
	if old != nil {
		// The mux goroutine may still be using old for one packet; it
		// handles the next through fp, on the same goroutine.
		fp.ctx = old.ctx
		fp.streams.Store(old.streams.Load())
	} else {
		ctx, err := newCtx()
		if err != nil {
			return err
		}
		fp.ctx = ctx
		empty := map[uint32]*fastStream{}
		fp.streams.Store(&empty)
	}
	next := f.copyPeers(p)
	next[addr] = fp
	f.peers.Store(&next)
	return nil
}

// removePeer takes p off the fast path.
func (f *fastPath) removePeer(p *participant) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := f.copyPeers(p)
	f.peers.Store(&next)
}

// copyPeers copies the peer map without p's entries; f.mu is held.
func (f *fastPath) copyPeers(p *participant) map[netip.AddrPort]*fastPeer {
	next := map[netip.AddrPort]*fastPeer{}
	if old := f.peers.Load(); old != nil {
		for k, v := range *old {
			if v.p != p {
				next[k] = v
			}
		}
	}
	return next
}
