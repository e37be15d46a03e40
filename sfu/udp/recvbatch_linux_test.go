//go:build linux && (amd64 || arm64)

package udp

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchPair is a media socket (srv, read as raw) and a peer that sends
// to it at dst.
func batchPair(tb testing.TB) (srv *net.UDPConn, raw *rawUDP, peer *net.UDPConn, dst netip.AddrPort) {
	tb.Helper()
	srv = listenUDP(tb, "127.0.0.1:0")
	_ = srv.SetReadBuffer(8 << 20)
	raw, err := newRawUDP(srv, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return srv, raw, listenUDP(tb, "127.0.0.1:0"), srv.LocalAddr().(*net.UDPAddr).AddrPort()
}

// takeFirst is a Handler that takes datagrams whose first byte is below
// keep, noting what it saw.
type takeFirst struct {
	keep byte
	seen []byte
	from []netip.AddrPort
}

func (h *takeFirst) Handle(b []byte, from netip.AddrPort) bool {
	if b[0] >= h.keep {
		return false
	}
	h.seen = append(h.seen, b[0])
	h.from = append(h.from, from)
	return true
}

// TestBatchReceiveTakesBurstsInFewCalls: a burst of 20 datagrams waiting
// on the socket reaches the handler in order, from the sender's address,
// with fewer recvmmsg calls than datagrams (one, when the kernel has
// queued the burst before the read), and the first datagram the handler
// does not take reaches the reader whole.
func TestBatchReceiveTakesBurstsInFewCalls(t *testing.T) {
	srv, raw, peer, dst := batchPair(t)
	const burst = 20
	for i := range burst {
		if _, err := peer.WriteToUDPAddrPort(datagram(byte(i), 1200), dst); err != nil {
			t.Fatal(err)
		}
	}
	h := &takeFirst{keep: burst - 1}
	buf := make([]byte, 2000)
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := raw.readHandled(buf, h)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1200 || buf[0] != burst-1 || from != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("reader got %d bytes of %d from %v", n, buf[0], from)
	}
	if len(h.seen) != burst-1 {
		t.Fatalf("handler saw %d datagrams, want %d", len(h.seen), burst-1)
	}
	for i, b := range h.seen {
		if b != byte(i) || h.from[i] != from {
			t.Fatalf("handler's datagram %d: %d from %v", i, b, h.from[i])
		}
	}
	if raw.rb.calls >= burst/2 {
		t.Fatalf("%d recvmmsg calls for %d datagrams", raw.rb.calls, burst)
	}
}

// TestBatchReceiveAllocsZero: a burst the handler takes, and one datagram
// for the reader, cost no allocation.
func TestBatchReceiveAllocsZero(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	raw, err := newRawUDP(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	self := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	h := &takeFirst{keep: 3, seen: make([]byte, 0, 4), from: make([]netip.AddrPort, 0, 4)}
	pkts := [][]byte{datagram(0, 1200), datagram(1, 1200), datagram(2, 1200), datagram(3, 1200)}
	buf := make([]byte, 1500)
	allocs := testing.AllocsPerRun(500, func() {
		h.seen, h.from = h.seen[:0], h.from[:0]
		for _, p := range pkts {
			if _, err := raw.WriteToAddrPort(p, self); err != nil {
				t.Fatal(err)
			}
		}
		if n, _, err := raw.readHandled(buf, h); err != nil || n != 1200 || buf[0] != 3 {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per burst, want 0", allocs)
	}
}

// TestConnBatchMatchesSingle: a Conn hands its reader the same datagrams,
// from the same addresses, reading in batches as reading one at a time.
func TestConnBatchMatchesSingle(t *testing.T) {
	for _, batch := range []bool{false, true} {
		srv := listenUDP(t, "127.0.0.1:0")
		h := &takeFirst{keep: 5}
		c, err := New(srv, h)
		if err != nil {
			t.Fatal(err)
		}
		c.batch = batch
		peer := listenUDP(t, "127.0.0.1:0")
		for i := range 10 {
			if _, err := peer.WriteToUDPAddrPort(datagram(byte(i), 100+i), srv.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 1500)
		for want := 5; want < 10; want++ {
			_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := c.ReadFromAddrPort(buf)
			if err != nil || n != 100+want || buf[0] != byte(want) || from != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("batch %v: got %d bytes of %d from %v, %v; want datagram %d", batch, n, buf[0], from, err, want)
			}
		}
		if len(h.seen) != 5 {
			t.Fatalf("batch %v: handler took %d, want 5", batch, len(h.seen))
		}
	}
}

// sizedTaker takes every datagram whose first byte is not 0xff, noting
// each one's first byte and length.
type sizedTaker struct {
	ids   []byte
	sizes []int
}

func (h *sizedTaker) Handle(b []byte, _ netip.AddrPort) bool {
	if len(b) > 0 && b[0] == 0xff {
		return false
	}
	h.ids = append(h.ids, b[0])
	h.sizes = append(h.sizes, len(b))
	return true
}

// TestBatchReceiveSplitsGRO: a peer's frame sent as one GSO message (five
// 1200-byte datagrams and a 700-byte last one) reaches the socket as one
// GRO message and the handler as the six datagrams, in order and each its
// own length; the datagram after it reaches the reader whole.
func TestBatchReceiveSplitsGRO(t *testing.T) {
	srv, raw, peer, dst := batchPair(t)
	// The first read turns GRO on; give it a datagram to return.
	h := &sizedTaker{}
	buf := make([]byte, 2000)
	if _, err := peer.WriteToUDPAddrPort(datagram(0xff, 10), dst); err != nil {
		t.Fatal(err)
	}
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := raw.readHandled(buf, h); err != nil {
		t.Fatal(err)
	}
	var on int
	var err error
	_ = raw.rc.Control(func(fd uintptr) { on, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO) })
	if err != nil || on == 0 {
		t.Skipf("kernel without UDP GRO (%v)", err)
	}

	var frame []byte
	for i := range 5 {
		frame = append(frame, datagram(byte(i), 1200)...)
	}
	frame = append(frame, datagram(5, 700)...)
	oob := make([]byte, unix.CmsgSpace(2))
	ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	ch.Level, ch.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	ch.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], 1200)
	if _, _, err := peer.WriteMsgUDPAddrPort(frame, oob, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.WriteToUDPAddrPort(datagram(0xff, 300), dst); err != nil {
		t.Fatal(err)
	}
	n, _, err := raw.readHandled(buf, h)
	if err != nil || n != 300 || buf[0] != 0xff {
		t.Fatalf("reader got %d bytes of %d, %v", n, buf[0], err)
	}
	if !slices.Equal(h.ids, []byte{0, 1, 2, 3, 4, 5}) || !slices.Equal(h.sizes, []int{1200, 1200, 1200, 1200, 1200, 700}) {
		t.Fatalf("handler saw ids %v sizes %v", h.ids, h.sizes)
	}
	if raw.rb.coalesced != 1 {
		t.Fatalf("%d coalesced messages, want 1 (the frame)", raw.rb.coalesced)
	}
}

// creditCounter takes every datagram, counts them, and hands the sender a
// credit for each whole frame received.
type creditCounter struct {
	frame   int
	n       int
	credits chan struct{}
}

func (c *creditCounter) Handle([]byte, netip.AddrPort) bool {
	c.n++
	if c.n%c.frame == 0 {
		select {
		case c.credits <- struct{}{}:
		default:
		}
	}
	return true
}

// BenchmarkMediaSocketDatagram is what the kernel charges for one media
// datagram over loopback, sending and receiving side together: the
// process's CPU time per datagram (cpu-ns/datagram), both sockets in it.
// A frame of 1,200-byte datagrams is sent as one sendto each
// ("datagrams"), or as one GSO message that reaches the media socket as
// one GRO message ("gso-gro/N", N datagrams a message: 3 is what the
// loadtest's media averages — video frames of ≈ 7 packets and single audio
// packets — and 8 a larger frame); the receiver is the media socket's
// batch read. It is the floor under the SFU's cost per forwarded packet
// (one datagram in, one out) on the machine it runs on.
//
//	go test -run '^$' -bench MediaSocketDatagram -benchtime 200000x ./sfu/udp/
func BenchmarkMediaSocketDatagram(b *testing.B) {
	const size = 1200
	for _, m := range []struct {
		name  string
		frame int
		gso   bool
	}{{"datagrams", 8, false}, {"gso-gro/3", 3, true}, {"gso-gro/8", 8, true}} {
		b.Run(m.name, func(b *testing.B) {
			_, raw, peer, dst := batchPair(b)
			h := &creditCounter{frame: m.frame, credits: make(chan struct{}, 64)}
			go func() {
				buf := make([]byte, 2000)
				for {
					if _, _, err := raw.readHandled(buf, h); err != nil {
						return
					}
				}
			}()
			pkt := make([]byte, size)
			burst := bytes.Repeat(pkt, m.frame)
			oob := make([]byte, unix.CmsgSpace(2))
			ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
			ch.Level, ch.Type = unix.SOL_UDP, unix.UDP_SEGMENT
			ch.SetLen(unix.CmsgLen(2))
			binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], size)
			frames := b.N/m.frame + 1
			for range 64 / m.frame { // datagrams in flight: within the default rmem_max
				h.credits <- struct{}{}
			}
			cpu0 := processCPU()
			b.ResetTimer()
			for range frames {
				select {
				case <-h.credits:
				case <-time.After(5 * time.Second):
					b.Fatal("the receiver lost a frame")
				}
				if m.gso {
					if _, _, err := peer.WriteMsgUDPAddrPort(burst, oob, dst); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for range m.frame {
					if _, err := peer.WriteToUDPAddrPort(pkt, dst); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(frames*m.frame), "cpu-ns/datagram")
		})
	}
}

// processCPU is the process's CPU time so far (user and system).
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
