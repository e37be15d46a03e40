//go:build linux && (amd64 || arm64)

package udp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDP reads and writes the mux's UDP socket with raw system calls.
//
// Why: a non-blocking datagram send or receive returns in microseconds,
// but Go's ordinary syscall path (entersyscall) wakes the runtime's sysmon
// thread whenever the process was idle before. Media arrives in bursts
// with idle gaps between them, so that happened on nearly every burst,
// and sysmon then polled every 20 µs until the process was idle again: a
// perf profile of `openvisit loadtest --visits 16` put 28 % of the
// server's CPU in sysmon's sleeps. Waiting for the socket still goes
// through the runtime's poller (RawConn.Read/Write), so no thread blocks.
type rawUDP struct {
	conn *net.UDPConn
	rc   syscall.RawConn
	v6   bool

	rmu sync.Mutex // one reader at a time; guards rd and rb
	rd  rawRead
	rb  *recvBatch // recvbatch_linux.go

	writers sync.Pool // *rawWrite

	// Held writes (see readHeld): while the reader works through a burst,
	// datagrams queue in q and leave together.
	qmu     sync.Mutex
	holding bool
	q       *udpSendQueue
	flushFn func(fd uintptr) bool
	noGSO   atomic.Bool // the kernel or route refused UDP_SEGMENT

	sent *counters
}

// rawRead is the state of one recvfrom: its callback is bound once, so a
// read allocates nothing.
type rawRead struct {
	buf   []byte
	hold  bool // readHeld: flush held writes before waiting
	n     int
	errno syscall.Errno
	from  unix.RawSockaddrAny
	fn    func(fd uintptr) bool
}

// rawWrite is the state of one sendto, pooled for concurrent writers.
type rawWrite struct {
	buf   []byte
	sa    unsafe.Pointer
	salen uintptr
	n     int
	errno syscall.Errno
	sa4   unix.RawSockaddrInet4
	sa6   unix.RawSockaddrInet6
	fn    func(fd uintptr) bool
}

// readerWriter returns c's allocation-free reader and writer: rawUDP here.
func readerWriter(c *net.UDPConn, sent *counters) addrPortConn {
	u, err := newRawUDP(c, sent)
	if err != nil {
		return udpAddrPort{c}
	}
	return u
}

// newRawUDP wraps c; sent (nil: counted nowhere) counts batched sends.
func newRawUDP(c *net.UDPConn, sent *counters) (*rawUDP, error) {
	if sent == nil {
		sent = &counters{}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	la, _ := c.LocalAddr().(*net.UDPAddr)
	u := &rawUDP{conn: c, rc: rc, v6: la != nil && la.IP.To4() == nil, q: &udpSendQueue{}, sent: sent}
	u.rd.fn = u.recv
	u.rb = newRecvBatch(u)
	u.flushFn = u.flushFD
	_ = rc.Control(func(fd uintptr) {
		// Fails on kernels without UDP GSO (before 4.18).
		if _, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT); err != nil {
			u.noGSO.Store(true)
		}
	})
	u.writers.New = func() any {
		w := &rawWrite{}
		w.fn = w.send
		return w
	}
	return u, nil
}

// recv is the RawConn.Read callback. Before it reports "nothing to read"
// (and the goroutine waits), it sends what readHeld held back.
func (u *rawUDP) recv(fd uintptr) bool {
	r := &u.rd
	for {
		salen := uint32(unsafe.Sizeof(r.from))
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))), uintptr(len(r.buf)), 0,
			uintptr(unsafe.Pointer(&r.from)), uintptr(unsafe.Pointer(&salen)))
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if r.hold {
				u.drained(fd)
			}
			return false
		}
		r.n, r.errno = int(n), errno
		return true
	}
}

func (w *rawWrite) send(fd uintptr) bool {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(w.buf))), uintptr(len(w.buf)), 0,
			uintptr(w.sa), w.salen)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		w.n, w.errno = int(n), errno
		return true
	}
}

// ReadFromAddrPort reads one datagram. Like net.UDPConn's, an IPv6 socket
// reports IPv4 peers as IPv4-mapped addresses.
func (u *rawUDP) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	u.release()
	return u.read(b, false)
}

// readHeld reads like ReadFromAddrPort, and after a datagram it holds the
// socket's writes: they queue until a later read finds the socket empty
// (just before it waits) or release is called. Conn's Handler forwards a
// burst of packets this way, so the forwarded copies leave with one
// sendmmsg, where runs of equal-size datagrams to one peer become one
// UDP GSO send (the kernel segments them). Writes from other goroutines
// queue too; the reader flushes them at most one burst later.
func (u *rawUDP) readHeld(b []byte) (int, netip.AddrPort, error) {
	return u.read(b, true)
}

func (u *rawUDP) read(b []byte, hold bool) (int, netip.AddrPort, error) {
	if len(b) == 0 {
		return u.conn.ReadFromUDPAddrPort(b)
	}
	u.rmu.Lock()
	defer u.rmu.Unlock()
	r := &u.rd
	r.buf, r.hold, r.n, r.errno = b, hold, 0, 0
	err := u.rc.Read(r.fn)
	r.buf = nil
	if err != nil {
		u.release()
		return 0, netip.AddrPort{}, err
	}
	if r.errno != 0 {
		u.release()
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Err: r.errno}
	}
	if hold {
		u.qmu.Lock()
		u.holding = true
		u.qmu.Unlock()
	}
	return r.n, sockaddrToAddrPort(&r.from), nil
}

// drained ends a hold when the socket has nothing more to read: the writes
// held through the burst go out before the reader waits (on fd, from the
// raw read callback, where rc.Write cannot be re-entered).
func (u *rawUDP) drained(fd uintptr) {
	u.qmu.Lock()
	u.holding = false
	u.flushFD(fd)
	u.qmu.Unlock()
}

// release ends a hold and sends what it queued.
func (u *rawUDP) release() {
	u.qmu.Lock()
	if u.holding {
		u.holding = false
		if u.q.n > 0 {
			_ = u.rc.Write(u.flushFn)
		}
	}
	u.qmu.Unlock()
}

// sockaddrToAddrPort converts what recvfrom filled in.
func sockaddrToAddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), portOf(&s.Port))
	case unix.AF_INET6:
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		ip := netip.AddrFrom16(s.Addr)
		if s.Scope_id != 0 {
			if ifc, err := net.InterfaceByIndex(int(s.Scope_id)); err == nil {
				ip = ip.WithZone(ifc.Name)
			}
		}
		return netip.AddrPortFrom(ip, portOf(&s.Port))
	}
	return netip.AddrPort{}
}

// portOf reads a port stored in network byte order.
func portOf(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

var errAddrFamily = errors.New("udp: address family mismatch")

// WriteToAddrPort sends one datagram, or queues a copy while writes are
// held.
func (u *rawUDP) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	u.qmu.Lock()
	if u.holding {
		n, err := u.queueLocked(b, addr)
		u.qmu.Unlock()
		return n, err
	}
	u.qmu.Unlock()
	return u.writeNow(b, addr)
}

// queueLocked queues a copy of b for addr, sending the queue when it is
// full; what cannot be queued (too big, or a wrong address family) is
// sent now, after what is queued. u.qmu is held.
func (u *rawUDP) queueLocked(b []byte, addr netip.AddrPort) (int, error) {
	if len(b) <= sendSlot && u.q.n < sendQueueLen && u.q.add(b, addr, u.v6) {
		if u.q.n == sendQueueLen {
			_ = u.rc.Write(u.flushFn)
		}
		return len(b), nil
	}
	if u.q.n > 0 {
		_ = u.rc.Write(u.flushFn)
	}
	return u.writeNow(b, addr)
}

// writeBurst sends bufs to addr together (Conn.WriteBurst): queued, then
// sent with the queue's sendmmsg — now, or with the reader's held writes
// when it is working through a burst.
func (u *rawUDP) writeBurst(bufs [][]byte, addr netip.AddrPort) (int, error) {
	u.qmu.Lock()
	defer u.qmu.Unlock()
	for i, b := range bufs {
		if _, err := u.queueLocked(b, addr); err != nil {
			return i, err
		}
	}
	if !u.holding && u.q.n > 0 {
		_ = u.rc.Write(u.flushFn)
	}
	return len(bufs), nil
}

// writeNow sends one datagram with sendto.
func (u *rawUDP) writeNow(b []byte, addr netip.AddrPort) (int, error) {
	w := u.writers.Get().(*rawWrite)
	defer u.writers.Put(w)
	sa, salen, err := sockaddrFor(addr, u.v6, &w.sa4, &w.sa6)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Err: err}
	}
	w.sa, w.salen = sa, uintptr(salen)
	w.buf, w.n, w.errno = b, 0, 0
	err = u.rc.Write(w.fn)
	w.buf, w.sa = nil, nil
	if err != nil {
		return 0, err
	}
	if w.errno != 0 {
		return 0, &net.OpError{Op: "write", Net: "udp", Err: w.errno}
	}
	return w.n, nil
}
