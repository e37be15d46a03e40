//go:build linux && (amd64 || arm64)

package udp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func listenUDP(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err) // e.g. no IPv6 on this host
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.UDPConn)
}

// TestRawUDPMatchesNet checks that rawUDP reads and writes what
// net.UDPConn would, with the same peer addresses, on IPv4 and on a
// dual-stack IPv6 socket (where IPv4 peers appear IPv4-mapped).
func TestRawUDPMatchesNet(t *testing.T) {
	for _, tc := range []struct{ server, peer string }{
		{"127.0.0.1:0", "127.0.0.1:0"},
		{"[::]:0", "127.0.0.1:0"},
		{"[::1]:0", "[::1]:0"},
	} {
		t.Run(tc.server+"<-"+tc.peer, func(t *testing.T) {
			srv := listenUDP(t, tc.server)
			peer := listenUDP(t, tc.peer)
			raw, err := newRawUDP(srv, nil)
			if err != nil {
				t.Fatal(err)
			}
			port := uint16(srv.LocalAddr().(*net.UDPAddr).Port)
			dst := netip.AddrPortFrom(peer.LocalAddr().(*net.UDPAddr).AddrPort().Addr(), port)
			if dst.Addr().IsUnspecified() || dst.Addr().Is4() {
				dst = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
			}

			// What net.UDPConn reports for this peer.
			if _, err := peer.WriteToUDPAddrPort([]byte("first"), dst); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, want, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}

			if _, err := peer.WriteToUDPAddrPort([]byte("second"), dst); err != nil {
				t.Fatal(err)
			}
			n, from, err := raw.ReadFromAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != "second" || from != want {
				t.Fatalf("raw read %q from %v, want %q from %v", buf[:n], from, "second", want)
			}

			// Reply to the address the read reported.
			if n, err := raw.WriteToAddrPort([]byte("reply"), from); err != nil || n != 5 {
				t.Fatalf("raw write: %d, %v", n, err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err = peer.ReadFromUDPAddrPort(buf)
			if err != nil || !bytes.Equal(buf[:n], []byte("reply")) {
				t.Fatalf("peer got %q, %v", buf[:n], err)
			}
		})
	}
}

// TestRawUDPClosedUnblocksRead checks that closing the socket ends a
// waiting read with net.ErrClosed, which is how the ICE mux stops.
func TestRawUDPClosedUnblocksRead(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	raw, err := newRawUDP(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := raw.ReadFromAddrPort(make([]byte, 100))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	_ = srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read still blocked after close")
	}
	if _, err := raw.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

// TestRawUDPAddressFamily checks that an IPv4 socket refuses an IPv6
// destination with an error instead of sending garbage.
func TestRawUDPAddressFamily(t *testing.T) {
	raw, err := newRawUDP(listenUDP(t, "127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("[2001:db8::1]:9")); !errors.Is(err, errAddrFamily) {
		t.Fatalf("got %v, want errAddrFamily", err)
	}
}

// TestRawUDPAllocsZero checks that a datagram's write and read allocate
// nothing: they are on the media hot path.
func TestRawUDPAllocsZero(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	raw, err := newRawUDP(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	self := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	pkt := make([]byte, 1200)
	buf := make([]byte, 1500)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := raw.WriteToAddrPort(pkt, self); err != nil {
			t.Fatal(err)
		}
		if n, _, err := raw.ReadFromAddrPort(buf); err != nil || n != len(pkt) {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write+read, want 0", allocs)
	}
}

// heldSocket returns a rawUDP server whose writes are held: a peer sent it
// one datagram and readHeld read it.
func heldSocket(t *testing.T) (*rawUDP, netip.AddrPort) {
	return heldSocketOn(t, "127.0.0.1:0")
}

func heldSocketOn(t *testing.T, addr string) (*rawUDP, netip.AddrPort) {
	t.Helper()
	srv := listenUDP(t, addr)
	raw, err := newRawUDP(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	kick := listenUDP(t, "127.0.0.1:0")
	self := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.LocalAddr().(*net.UDPAddr).Port))
	if _, err := kick.WriteToUDPAddrPort([]byte("go"), self); err != nil {
		t.Fatal(err)
	}
	if _, _, err := raw.readHeld(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	return raw, self
}

// datagram is a payload of n bytes that names itself.
func datagram(id byte, n int) []byte {
	b := bytes.Repeat([]byte{id}, n)
	return b
}

// expectDatagrams reads want from c in order.
func expectDatagrams(t *testing.T, c *net.UDPConn, want [][]byte) {
	t.Helper()
	buf := make([]byte, 2000)
	for i, w := range want {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], w) {
			t.Fatalf("datagram %d: got %d bytes of %q, want %d bytes of %q", i, n, buf[:1], len(w), w[:1])
		}
	}
}

// TestHeldWritesLeaveTogether checks that writes made while a burst is
// held arrive complete and in order per peer once the hold ends, sent
// with one sendmmsg whose equal-size runs to a peer are GSO messages
// (and with GSO off, one message per datagram), on an IPv4 socket and on
// a dual-stack one sending to IPv4-mapped addresses.
func TestHeldWritesLeaveTogether(t *testing.T) {
	for _, tc := range []struct {
		server string
		gso    bool
	}{{"127.0.0.1:0", true}, {"127.0.0.1:0", false}, {"[::]:0", true}} {
		gso := tc.gso
		t.Run(fmt.Sprintf("%s/gso=%v", tc.server, gso), func(t *testing.T) {
			raw, _ := heldSocketOn(t, tc.server)
			if !gso {
				raw.noGSO.Store(true)
			} else if raw.noGSO.Load() {
				t.Skip("kernel without UDP GSO")
			}
			a, b := listenUDP(t, "127.0.0.1:0"), listenUDP(t, "127.0.0.1:0")
			toA := [][]byte{datagram(1, 1000), datagram(2, 1000), datagram(3, 1000), datagram(4, 1000), datagram(5, 600)}
			toB := [][]byte{datagram(6, 800), datagram(7, 900), datagram(8, 800)}
			aAddr, bAddr := a.LocalAddr().(*net.UDPAddr).AddrPort(), b.LocalAddr().(*net.UDPAddr).AddrPort()
			// Interleaved, as forwarding to two subscribers does.
			for i := 0; i < len(toA); i++ {
				if _, err := raw.WriteToAddrPort(toA[i], aAddr); err != nil {
					t.Fatal(err)
				}
				if i < len(toB) {
					if _, err := raw.WriteToAddrPort(toB[i], bAddr); err != nil {
						t.Fatal(err)
					}
				}
			}
			if raw.q.n != len(toA)+len(toB) {
				t.Fatalf("%d datagrams held, want %d", raw.q.n, len(toA)+len(toB))
			}
			calls := raw.sent.calls.Load()
			raw.release()
			if got := raw.sent.calls.Load() - calls; got != 1 {
				t.Fatalf("%d sendmmsg calls, want 1", got)
			}
			// A: one message of five segments. B: 800, then 900 is longer
			// so it starts a message that the last 800 joins.
			wantMsgs := 3
			if !gso {
				wantMsgs = len(toA) + len(toB)
			}
			if raw.q.nmsg != wantMsgs {
				t.Fatalf("%d messages, want %d", raw.q.nmsg, wantMsgs)
			}
			expectDatagrams(t, a, toA)
			expectDatagrams(t, b, toB)
			if d := raw.sent.dropped.Load(); d != 0 {
				t.Fatalf("%d dropped", d)
			}
		})
	}
}

// TestHeldWritesFlushBeforeWaiting checks that a reader which finds the
// socket empty sends the held writes before it waits, so they never wait
// for the next incoming packet.
func TestHeldWritesFlushBeforeWaiting(t *testing.T) {
	raw, self := heldSocket(t)
	a := listenUDP(t, "127.0.0.1:0")
	want := [][]byte{datagram(1, 500), datagram(2, 500)}
	for _, d := range want {
		if _, err := raw.WriteToAddrPort(d, a.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := raw.readHeld(make([]byte, 100))
		done <- err
	}()
	expectDatagrams(t, a, want) // while the read waits
	select {
	case err := <-done:
		t.Fatalf("read returned early: %v", err)
	default:
	}
	if _, err := a.WriteToUDPAddrPort([]byte("end"), self); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	raw.release()
}

// TestHeldWritesFullQueue checks that more writes than the queue holds
// are all sent, in order.
func TestHeldWritesFullQueue(t *testing.T) {
	raw, _ := heldSocket(t)
	a := listenUDP(t, "127.0.0.1:0")
	_ = a.SetReadBuffer(1 << 20)
	var want [][]byte
	for i := 0; i < sendQueueLen*2+5; i++ {
		d := datagram(byte(i), 300+i)
		want = append(want, d)
		if _, err := raw.WriteToAddrPort(d, a.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
	}
	// A datagram too big to hold goes after what is held.
	big := datagram(0xee, sendSlot+1)
	want = append(want, big)
	if _, err := raw.WriteToAddrPort(big, a.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	raw.release()
	expectDatagrams(t, a, want)
}

// TestHeldWritesAllocsZero checks that a held burst allocates nothing.
func TestHeldWritesAllocsZero(t *testing.T) {
	raw, self := heldSocket(t)
	a := listenUDP(t, "127.0.0.1:0")
	_ = a.SetReadBuffer(4 << 20)
	go func() { // drain
		buf := make([]byte, 2000)
		for {
			if _, _, err := a.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	dst := a.LocalAddr().(*net.UDPAddr).AddrPort()
	pkt := make([]byte, 1200)
	buf := make([]byte, 1500)
	allocs := testing.AllocsPerRun(500, func() {
		if _, err := raw.WriteToAddrPort(pkt, self); err != nil { // loops back to be read
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			if _, err := raw.WriteToAddrPort(pkt, dst); err != nil {
				t.Fatal(err)
			}
		}
		raw.release()
		if _, _, err := raw.readHeld(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per burst, want 0", allocs)
	}
}

// FuzzSendQueueBuild checks build's rules on any queue: every datagram is
// in exactly one message; a peer's datagrams keep their order; a message
// goes to one address, its segments but the last are exactly its segment
// size, and it stays within the kernel's GSO limits.
func FuzzSendQueueBuild(f *testing.F) {
	f.Add([]byte{0, 10, 0, 10, 1, 10, 0, 5, 0, 10})
	f.Add([]byte{0, 200, 0, 200, 0, 200, 1, 1, 0, 255})
	f.Fuzz(func(t *testing.T, spec []byte) {
		q := &udpSendQueue{}
		addrs := []netip.AddrPort{
			netip.MustParseAddrPort("127.0.0.1:1000"),
			netip.MustParseAddrPort("127.0.0.1:1001"),
			netip.MustParseAddrPort("10.0.0.1:1000"),
		}
		for i := 0; i+1 < len(spec) && q.n < sendQueueLen; i += 2 {
			n := 1 + int(spec[i+1])*(sendSlot-1)/255
			d := make([]byte, n)
			d[0] = byte(q.n)
			q.add(d, addrs[int(spec[i])%len(addrs)], false)
		}
		q.build(false, true)
		next := map[netip.AddrPort]int{} // next queue index expected per peer
		seen := 0
		for j := 0; j < q.nmsg; j++ {
			g := q.msgs[j]
			if g.count < 1 || g.count > gsoMaxSegments || (g.count > 1 && g.bytes > gsoMaxBytes) {
				t.Fatalf("message %d: %d segments, %d bytes", j, g.count, g.bytes)
			}
			dst := q.dst[g.first]
			for k := 0; k < g.count; k++ {
				v := q.iovs[g.iov+k]
				i := int(*v.Base) // the datagram's queue index
				if q.dst[i] != dst {
					t.Fatalf("message %d mixes addresses", j)
				}
				if int(v.Len) != int(q.lens[i]) || (k < g.count-1 && int(v.Len) != g.seg) || int(v.Len) > g.seg {
					t.Fatalf("message %d segment %d: %d bytes, segment size %d", j, k, v.Len, g.seg)
				}
				if i < next[dst] {
					t.Fatalf("datagram %d to %v sent after a later one", i, dst)
				}
				next[dst] = i + 1
				seen++
			}
		}
		if seen != q.n {
			t.Fatalf("%d of %d datagrams in messages", seen, q.n)
		}
	})
}

// TestHeldWritesGSOFallback checks that when the kernel refuses a GSO
// send (here: UDP checksums off, SO_NO_CHECK, which GSO cannot do), GSO
// turns off and the batch still arrives whole and in order.
func TestHeldWritesGSOFallback(t *testing.T) {
	raw, _ := heldSocket(t)
	if raw.noGSO.Load() {
		t.Skip("kernel without UDP GSO")
	}
	if err := raw.rc.Control(func(fd uintptr) {
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1); err != nil {
			t.Fatal(err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	a, b := listenUDP(t, "127.0.0.1:0"), listenUDP(t, "127.0.0.1:0")
	toA := [][]byte{datagram(1, 700), datagram(2, 700), datagram(3, 700)}
	toB := [][]byte{datagram(4, 900), datagram(5, 900)}
	for i, d := range toA {
		if _, err := raw.WriteToAddrPort(d, a.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
		if i < len(toB) {
			if _, err := raw.WriteToAddrPort(toB[i], b.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw.release()
	if !raw.noGSO.Load() {
		t.Fatal("GSO still on after the kernel refused it")
	}
	expectDatagrams(t, a, toA)
	expectDatagrams(t, b, toB)
	if d := raw.sent.dropped.Load(); d != 0 {
		t.Fatalf("%d dropped", d)
	}
}

// BenchmarkMediaSocketSend measures the media socket's cost per datagram
// (1,200 bytes to one peer over loopback, the peer's receive included, as
// the kernel charges it to the sender): one sendto each, against bursts
// of four held and sent with one sendmmsg, with GSO and without.
//
//	go test -run '^$' -bench MediaSocketSend ./sfu/udp/
func BenchmarkMediaSocketSend(b *testing.B) {
	for _, mode := range []string{"sendto", "held-gso", "held-no-gso"} {
		b.Run(mode, func(b *testing.B) {
			srv, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			raw, err := newRawUDP(srv.(*net.UDPConn), nil)
			if err != nil {
				b.Fatal(err)
			}
			if mode == "held-no-gso" {
				raw.noGSO.Store(true)
			}
			peer, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer peer.Close()
			_ = peer.(*net.UDPConn).SetReadBuffer(8 << 20)
			go func() { // drain, allocating nothing (allocations count process-wide)
				buf := make([]byte, 2000)
				for {
					if _, _, err := peer.(*net.UDPConn).ReadFromUDPAddrPort(buf); err != nil {
						return
					}
				}
			}()
			dst := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			pkt := make([]byte, 1200)
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 4 {
				if mode != "sendto" {
					raw.qmu.Lock()
					raw.holding = true
					raw.qmu.Unlock()
				}
				for range 4 {
					if _, err := raw.WriteToAddrPort(pkt, dst); err != nil {
						b.Fatal(err)
					}
				}
				raw.release()
			}
		})
	}
}

// TestWriteBurstOneCall: a sender's burst — a video frame of five
// 1,200-byte packets and a 700-byte last one, then an audio packet —
// arrives complete and in order, sent with one sendmmsg as two messages
// (the frame as one GSO message, the audio packet alone).
func TestWriteBurstOneCall(t *testing.T) {
	src := listenUDP(t, "127.0.0.1:0")
	c, err := New(src, &takeFirst{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.rw.(*rawUDP); !ok {
		t.Skip("no raw socket on this platform")
	}
	dst := listenUDP(t, "127.0.0.1:0")
	var burst [][]byte
	for i := range 5 {
		burst = append(burst, datagram(byte(i), 1200))
	}
	burst = append(burst, datagram(5, 700), datagram(6, 160))
	n, err := c.WriteBurst(burst, dst.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil || n != len(burst) {
		t.Fatalf("WriteBurst: %d, %v", n, err)
	}
	expectDatagrams(t, dst, burst)
	st := c.Sent()
	if st.Calls != 1 || st.Datagrams != 7 || st.Dropped != 0 {
		t.Fatalf("sent %+v, want one call of 7 datagrams", st)
	}
	if !c.rw.(*rawUDP).noGSO.Load() && st.Messages != 2 {
		t.Fatalf("%d messages, want 2 (the frame as one GSO message, the audio packet)", st.Messages)
	}
}
