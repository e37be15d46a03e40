// Package udp is the SFU's media socket: the one UDP socket that every
// peer's ICE traffic shares. On Linux it reads and writes with raw system
// calls (raw_linux.go: no sysmon wake-ups), receives in batches with
// recvmmsg and UDP GRO (recvbatch_linux.go), holds the writes made while a
// received burst is forwarded and sends them together with sendmmsg and
// UDP GSO (sendqueue_linux.go), as WriteBurst sends a sender's burst;
// elsewhere it is the standard library's socket. The load generator's
// clients use it too (internal/loadtest). A Handler sees every datagram first and may take it: that is
// how the SFU's receive fast path forwards media before Pion's ICE mux
// would see it. Reading, writing and holding allocate nothing.
package udp

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
)

// Handler is what Conn offers every datagram to before its reader gets
// it. Handle reports whether it took b, received from from (forwarded or
// dropped it); b is only valid during the call. It runs on the reading
// goroutine and must not block.
type Handler interface {
	Handle(b []byte, from netip.AddrPort) bool
}

// Conn is the media socket with a Handler in its reads: a datagram the
// handler takes never reaches the reader (Pion's ICE UDP mux). It
// implements net.PacketConn and ice.AddrPortReaderWriter.
//
// Lifecycle: New wraps an open socket; closing the Conn (or the socket)
// ends a waiting read with net.ErrClosed.
type Conn struct {
	net.PacketConn
	rw   addrPortConn
	held heldReader // rw, when it can hold writes during a burst
	h    Handler
	sent counters
	// batch: reads take batches (recvmmsg); off, one datagram per read.
	batch bool
}

// SendStats counts datagrams sent in batches: the sendmmsg calls, the
// messages they carried (a GSO message carries several datagrams), the
// datagrams, and those the kernel refused.
type SendStats struct {
	Calls, Messages, Datagrams, Dropped uint64
}

// Add sums two sockets' figures.
func (s SendStats) Add(o SendStats) SendStats {
	return SendStats{s.Calls + o.Calls, s.Messages + o.Messages, s.Datagrams + o.Datagrams, s.Dropped + o.Dropped}
}

// counters are SendStats as the sending goroutines count them.
type counters struct {
	calls, messages, datagrams, dropped atomic.Uint64
}

// RecvStats counts batched receives: the recvmmsg calls that returned
// messages, the messages (a GRO message holds several datagrams) and the
// datagrams they held.
type RecvStats struct {
	Calls, Messages, Datagrams uint64
}

// Add sums two sockets' figures.
func (s RecvStats) Add(o RecvStats) RecvStats {
	return RecvStats{s.Calls + o.Calls, s.Messages + o.Messages, s.Datagrams + o.Datagrams}
}

// heldReader is a socket whose writes can be held while the handler
// forwards a burst, so that they leave together (rawUDP.readHeld), and
// that can offer the handler a batch of datagrams per system call
// (rawUDP.readHandled).
type heldReader interface {
	readHeld(b []byte) (int, netip.AddrPort, error)
	readHandled(b []byte, h Handler) (int, netip.AddrPort, error)
	release()
	received() RecvStats
}

// addrPortConn reads and writes with netip addresses (no allocation).
type addrPortConn interface {
	ReadFromAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// udpAddrPort adapts *net.UDPConn to addrPortConn.
type udpAddrPort struct{ *net.UDPConn }

func (u udpAddrPort) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return u.ReadFromUDPAddrPort(b)
}

func (u udpAddrPort) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return u.WriteToUDPAddrPort(b, addr)
}

// ErrNotUDP: New was given a socket it cannot read with netip addresses.
var ErrNotUDP = errors.New("udp: not a UDP socket")

// New wraps c, a UDP socket, so that h sees every datagram first.
func New(c net.PacketConn, h Handler) (*Conn, error) {
	conn := &Conn{PacketConn: c, h: h}
	switch c := c.(type) {
	case *net.UDPConn:
		conn.rw = readerWriter(c, &conn.sent)
	case addrPortConn:
		conn.rw = c
	default:
		return nil, ErrNotUDP
	}
	conn.held, _ = conn.rw.(heldReader)
	conn.batch = true
	return conn, nil
}

// Sent returns what the socket sent in batches so far.
func (c *Conn) Sent() SendStats {
	return SendStats{
		Calls:     c.sent.calls.Load(),
		Messages:  c.sent.messages.Load(),
		Datagrams: c.sent.datagrams.Load(),
		Dropped:   c.sent.dropped.Load(),
	}
}

// Received returns what the socket received in batches so far.
func (c *Conn) Received() RecvStats {
	if c.held == nil {
		return RecvStats{}
	}
	return c.held.received()
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter: the next datagram
// the handler does not take.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if c.held != nil && c.batch {
		return c.held.readHandled(b, c.h)
	}
	if c.held != nil {
		for {
			n, addr, err := c.held.readHeld(b)
			if err != nil {
				return n, addr, err
			}
			if !c.h.Handle(b[:n], addr) {
				c.held.release() // the reader takes over: send what is held
				return n, addr, nil
			}
		}
	}
	for {
		n, addr, err := c.rw.ReadFromAddrPort(b)
		if err != nil || !c.h.Handle(b[:n], addr) {
			return n, addr, err
		}
	}
}

// ReadFrom implements net.PacketConn.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}

// burstWriter is a socket that sends several datagrams with one system
// call (rawUDP.writeBurst).
type burstWriter interface {
	writeBurst(bufs [][]byte, addr netip.AddrPort) (int, error)
}

// WriteBurst sends bufs to addr, in order, with as few system calls as
// the socket allows: on Linux one sendmmsg for up to 64 datagrams, runs of
// equal-size ones (all but a shorter last) as UDP GSO messages — how a
// sender passes a video frame's packets. It returns how many it sent (or
// queued behind the reader's held writes) before an error.
func (c *Conn) WriteBurst(bufs [][]byte, addr netip.AddrPort) (int, error) {
	if bw, ok := c.rw.(burstWriter); ok {
		return bw.writeBurst(bufs, addr)
	}
	for i, b := range bufs {
		if _, err := c.rw.WriteToAddrPort(b, addr); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

// WriteToAddrPort implements ice.AddrPortReaderWriter.
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.rw.WriteToAddrPort(b, addr)
}
