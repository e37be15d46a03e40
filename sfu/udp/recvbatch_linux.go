//go:build linux && (amd64 || arm64)

package udp

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched receive. Each recvmmsg takes up to recvBatchLen datagrams the
// socket holds; the Handler sees them one by one from the batch's own
// buffers, so a burst of media costs one system call, not one per
// datagram. A raw syscall, as for recvfrom (raw_linux.go explains why not
// the runtime's syscall path; golang.org/x/net/ipv4's ReadBatch takes that
// path and allocates per call).
const (
	recvBatchLen = 32
	// recvSlot is one datagram's room: as large as the buffer Pion's ICE
	// mux reads into, so nothing it would have taken is cut short.
	recvSlot = 8192
)

// recvBatch is the state of one recvmmsg and of the datagrams it got:
// preallocated, so receiving allocates nothing. Guarded by rawUDP.rmu.
type recvBatch struct {
	n, next int // datagrams received, and the next one to hand out
	hold    bool
	errno   unix.Errno
	calls   uint64 // recvmmsg calls that returned datagrams or an error
	hdrs    [recvBatchLen]mmsghdr
	iovs    [recvBatchLen]unix.Iovec
	names   [recvBatchLen]unix.RawSockaddrAny
	bufs    [recvBatchLen][recvSlot]byte
	fn      func(fd uintptr) bool
}

// newRecvBatch lays the batch's messages out over its buffers once.
func newRecvBatch(u *rawUDP) *recvBatch {
	r := &recvBatch{}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(recvSlot)
		h := &r.hdrs[i].hdr
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	r.fn = func(fd uintptr) bool { return u.recvBatch(fd) }
	return r
}

// recvBatch is the RawConn.Read callback of readBatch. Before it reports
// "nothing to read" (and the goroutine waits) it sends the held writes.
func (u *rawUDP) recvBatch(fd uintptr) bool {
	r := u.rb
	for i := range r.hdrs {
		r.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		r.hdrs[i].hdr.Flags = 0
	}
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.hdrs[0])), recvBatchLen, 0, 0, 0)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if r.hold {
				u.drained(fd)
			}
			return false
		}
		r.n, r.next, r.errno = int(n), 0, errno
		r.calls++
		return true
	}
}

// readHandled returns the next datagram h does not take, copied into b,
// offering h each datagram of each batch first. Writes are held while h
// works through a burst (see readHeld); they leave before the goroutine
// waits for more, or when a datagram goes to the caller.
func (u *rawUDP) readHandled(b []byte, h Handler) (int, netip.AddrPort, error) {
	u.rmu.Lock()
	defer u.rmu.Unlock()
	r := u.rb
	for {
		for r.next < r.n {
			i := r.next
			r.next++
			m := &r.hdrs[i]
			d := r.bufs[i][:m.n]
			from := sockaddrToAddrPort(&r.names[i])
			if m.hdr.Flags&unix.MSG_TRUNC == 0 && h.Handle(d, from) {
				continue
			}
			u.release() // the reader takes over: send what is held
			return copy(b, d), from, nil
		}
		r.n, r.next, r.hold = 0, 0, true
		if err := u.rc.Read(r.fn); err != nil {
			u.release()
			return 0, netip.AddrPort{}, err
		}
		if r.errno != 0 {
			u.release()
			return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Err: r.errno}
		}
		u.qmu.Lock()
		u.holding = true
		u.qmu.Unlock()
	}
}
