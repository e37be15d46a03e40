package loadtest

import (
	"net"
	"sync"

	"golang.org/x/net/ipv4"
)

// fastConn is one simulated participant's UDP socket, which Pion's ICE
// mux reads and writes (STUN, DTLS, RTCP) while the participant's media
// bypasses Pion: reads take a batch of datagrams at a time (recvmmsg) and
// offer each to the handler first — the media path — so that one read
// system call and one goroutine wake-up serve many packets; sendBatch
// sends a frame's packets in one sendmmsg. Only the ICE mux's one read
// goroutine calls ReadFrom.
type fastConn struct {
	*net.UDPConn
	pc      *ipv4.PacketConn
	handle  func(b []byte) bool // reports whether it took b
	msgs    []ipv4.Message      // the batch being read
	n, next int                 // messages in msgs, the next to offer
	off     int                 // where message next's next datagram starts
	seg     int                 // its GRO datagram size (0: one datagram)

	wmu      sync.Mutex // serialises sendBatch and guards what follows
	wmsg     []ipv4.Message
	wcount   []int // datagrams in each of wmsg
	controls map[int][]byte
	noGSO    bool
}

// readBatch is how many messages one read may take; with UDP GRO a
// message holds a run of equal-size datagrams (a frame the SFU sent as
// one GSO message), up to 64 KiB.
const (
	readBatch = 16
	readSlot  = 1 << 16
)

// datagramSize bounds a media datagram (RTP of an MTU-sized payload).
const datagramSize = 1500

func newFastConn(c *net.UDPConn, handle func([]byte) bool) *fastConn {
	f := &fastConn{UDPConn: c, pc: ipv4.NewPacketConn(c), handle: handle,
		msgs: make([]ipv4.Message, readBatch)}
	for i := range f.msgs {
		f.msgs[i].Buffers = [][]byte{make([]byte, readSlot)}
		f.msgs[i].OOB = make([]byte, groOOB)
	}
	enableGRO(c)
	return f
}

// ReadFrom implements net.PacketConn for the ICE mux: the next datagram
// the handler does not take.
func (f *fastConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		for f.next < f.n {
			m := &f.msgs[f.next]
			if f.off == 0 {
				f.seg = groSegment(m.OOB[:m.NN])
			}
			d := m.Buffers[0][f.off:m.N]
			if f.seg > 0 && len(d) > f.seg {
				d = d[:f.seg]
			}
			f.off += len(d)
			if f.off >= m.N {
				f.next, f.off = f.next+1, 0
			}
			if f.handle(d) {
				continue
			}
			return copy(b, d), m.Addr, nil
		}
		n, err := f.pc.ReadBatch(f.msgs, 0)
		if err != nil {
			return 0, nil, err
		}
		f.n, f.next, f.off = n, 0, 0
	}
}

// gsoMaxSegments bounds the datagrams of one GSO message (the kernel's
// UDP_MAX_SEGMENTS is 64 or 128).
const gsoMaxSegments = 32

// sendBatch sends frames to to — each frame a run of datagrams, which
// leave as one GSO message when all but the last are the same size and
// the last is no longer (as a frame's packets are) — in as few sendmmsg
// calls as the kernel takes them. It returns the datagrams sent. Should
// the kernel refuse GSO, the conn sends datagram by datagram from then on.
func (f *fastConn) sendBatch(frames [][][]byte, to net.Addr) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	n, err := f.send(frames, to, gsoSupported && !f.noGSO)
	if err != nil && !f.noGSO && gsoSupported {
		f.noGSO = true // e.g. EIO from a device without checksum offload
		return f.send(frames, to, false)
	}
	return n, err
}

// send lays frames out as messages (GSO ones when gso) and sends them.
func (f *fastConn) send(frames [][][]byte, to net.Addr, gso bool) (int, error) {
	msgs, counts := f.wmsg[:0], f.wcount[:0]
	for _, fr := range frames {
		if gso && gsoable(fr) {
			msgs = append(msgs, ipv4.Message{Buffers: fr, Addr: to, OOB: f.control(len(fr[0]))})
			counts = append(counts, len(fr))
			continue
		}
		for _, d := range fr {
			msgs = append(msgs, ipv4.Message{Buffers: [][]byte{d}, Addr: to})
			counts = append(counts, 1)
		}
	}
	f.wmsg, f.wcount = msgs, counts
	sent, datagrams := 0, 0
	for sent < len(msgs) {
		n, err := f.pc.WriteBatch(msgs[sent:], 0)
		for _, c := range counts[sent : sent+n] {
			datagrams += c
		}
		if err != nil {
			return datagrams, err
		}
		sent += n
	}
	return datagrams, nil
}

// gsoable reports whether fr can leave as one GSO message.
func gsoable(fr [][]byte) bool {
	if len(fr) < 2 || len(fr) > gsoMaxSegments {
		return false
	}
	seg := len(fr[0])
	for _, d := range fr[1 : len(fr)-1] {
		if len(d) != seg {
			return false
		}
	}
	return len(fr[len(fr)-1]) <= seg
}

// control returns the GSO control message for seg-byte datagrams, made
// once per size.
func (f *fastConn) control(seg int) []byte {
	if f.controls == nil {
		f.controls = map[int][]byte{}
	}
	c := f.controls[seg]
	if c == nil {
		c = gsoControl(seg)
		f.controls[seg] = c
	}
	return c
}
