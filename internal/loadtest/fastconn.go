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
	n, next int                 // datagrams in msgs, the next to offer

	wmu  sync.Mutex // serialises sendBatch's use of wmsg
	wmsg []ipv4.Message
}

// readBatch is how many datagrams one read may take.
const readBatch = 32

// datagramSize bounds a media datagram (RTP of an MTU-sized payload).
const datagramSize = 1500

func newFastConn(c *net.UDPConn, handle func([]byte) bool) *fastConn {
	f := &fastConn{UDPConn: c, pc: ipv4.NewPacketConn(c), handle: handle,
		msgs: make([]ipv4.Message, readBatch)}
	for i := range f.msgs {
		f.msgs[i].Buffers = [][]byte{make([]byte, datagramSize)}
	}
	return f
}

// ReadFrom implements net.PacketConn for the ICE mux: the next datagram
// the handler does not take.
func (f *fastConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		for f.next < f.n {
			m := &f.msgs[f.next]
			f.next++
			d := m.Buffers[0][:m.N]
			if f.handle(d) {
				continue
			}
			return copy(b, d), m.Addr, nil
		}
		n, err := f.pc.ReadBatch(f.msgs, 0)
		if err != nil {
			return 0, nil, err
		}
		f.n, f.next = n, 0
	}
}

// sendBatch sends every datagram of pkts to to, in as few sendmmsg calls
// as the kernel takes them.
func (f *fastConn) sendBatch(pkts [][]byte, to net.Addr) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if cap(f.wmsg) < len(pkts) {
		f.wmsg = make([]ipv4.Message, len(pkts))
		for i := range f.wmsg {
			f.wmsg[i].Buffers = make([][]byte, 1)
		}
	}
	msgs := f.wmsg[:len(pkts)]
	for i, p := range pkts {
		msgs[i].Buffers[0] = p
		msgs[i].Addr = to
	}
	sent := 0
	for sent < len(msgs) {
		n, err := f.pc.WriteBatch(msgs[sent:], 0)
		if err != nil {
			return sent, err
		}
		sent += n
	}
	return sent, nil
}
