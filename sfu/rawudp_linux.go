//go:build linux && (amd64 || arm64)

package sfu

import (
	"errors"
	"net"
	"net/netip"
	"sync"
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

	rmu sync.Mutex // one reader at a time; guards rd
	rd  rawRead

	writers sync.Pool // *rawWrite
}

// rawRead is the state of one recvfrom: its callback is bound once, so a
// read allocates nothing.
type rawRead struct {
	buf   []byte
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

// udpReaderWriter returns c's allocation-free reader and writer: rawUDP here.
func udpReaderWriter(c *net.UDPConn) addrPortConn {
	u, err := newRawUDP(c)
	if err != nil {
		return udpAddrPort{c}
	}
	return u
}

func newRawUDP(c *net.UDPConn) (*rawUDP, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	la, _ := c.LocalAddr().(*net.UDPAddr)
	u := &rawUDP{conn: c, rc: rc, v6: la != nil && la.IP.To4() == nil}
	u.rd.fn = u.rd.recv
	u.writers.New = func() any {
		w := &rawWrite{}
		w.fn = w.send
		return w
	}
	return u, nil
}

func (r *rawRead) recv(fd uintptr) bool {
	for {
		salen := uint32(unsafe.Sizeof(r.from))
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))), uintptr(len(r.buf)), 0,
			uintptr(unsafe.Pointer(&r.from)), uintptr(unsafe.Pointer(&salen)))
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
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
	if len(b) == 0 {
		return u.conn.ReadFromUDPAddrPort(b)
	}
	u.rmu.Lock()
	defer u.rmu.Unlock()
	r := &u.rd
	r.buf, r.n, r.errno = b, 0, 0
	err := u.rc.Read(r.fn)
	r.buf = nil
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if r.errno != 0 {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Err: r.errno}
	}
	return r.n, sockaddrToAddrPort(&r.from), nil
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

var errAddrFamily = errors.New("sfu: address family mismatch")

// WriteToAddrPort sends one datagram.
func (u *rawUDP) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	w := u.writers.Get().(*rawWrite)
	defer u.writers.Put(w)
	ip := addr.Addr()
	switch {
	case u.v6:
		w.sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			ifc, err := net.InterfaceByName(z)
			if err != nil {
				return 0, &net.OpError{Op: "write", Net: "udp", Err: err}
			}
			w.sa6.Scope_id = uint32(ifc.Index)
		}
		putPort(&w.sa6.Port, addr.Port())
		w.sa, w.salen = unsafe.Pointer(&w.sa6), unix.SizeofSockaddrInet6
	case ip.Unmap().Is4():
		w.sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		putPort(&w.sa4.Port, addr.Port())
		w.sa, w.salen = unsafe.Pointer(&w.sa4), unix.SizeofSockaddrInet4
	default:
		return 0, &net.OpError{Op: "write", Net: "udp", Err: errAddrFamily}
	}
	w.buf, w.n, w.errno = b, 0, 0
	err := u.rc.Write(w.fn)
	w.buf, w.sa = nil, nil
	if err != nil {
		return 0, err
	}
	if w.errno != 0 {
		return 0, &net.OpError{Op: "write", Net: "udp", Err: w.errno}
	}
	return w.n, nil
}
