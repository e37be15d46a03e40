//go:build linux && (amd64 || arm64)

package sfu

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func listenUDP(t *testing.T, addr string) *net.UDPConn {
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
			raw, err := newRawUDP(srv)
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
	raw, err := newRawUDP(srv)
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
	raw, err := newRawUDP(listenUDP(t, "127.0.0.1:0"))
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
	raw, err := newRawUDP(srv)
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
