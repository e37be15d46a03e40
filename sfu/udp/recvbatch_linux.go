//go:build linux && (amd64 || arm64)

package udp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched receive. Each recvmmsg takes up to recvBatchLen messages the
// socket holds; the Handler sees their datagrams one by one from the
// batch's own buffers, so a burst of media costs one system call, not one
// per datagram. A raw syscall, as for recvfrom (raw_linux.go explains why
// not the runtime's syscall path; golang.org/x/net/ipv4's ReadBatch takes
// that path and allocates per call).
//
// With UDP GRO (Linux ≥ 5.0) one message holds a run of a peer's
// equal-size datagrams — a video frame's packets, which the clients send
// as one GSO message — that the kernel took through its stack once instead
// of once per datagram; a control message gives the datagrams' size and
// readHandled splits them again. On this project's 2-core VMs the kernel's
// share of a loopback datagram fell from ≈ 10 µs to ≈ 2 µs with GSO on the
// sending and GRO on the receiving socket (docs/BENCHMARKS.md).
const (
	recvBatchLen = 16
	// recvSlot is one message's room: a whole GRO message (at most 64 KiB,
	// as an IP datagram) — so also as large as the buffer Pion's ICE mux
	// reads into, and nothing it would have taken is cut short.
	recvSlot = 1 << 16
	// recvCmsgSlot holds the UDP_GRO control message (an int).
	recvCmsgSlot = 32
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
	cmsgs   [recvBatchLen][recvCmsgSlot]byte
	bufs    [recvBatchLen][recvSlot]byte
	fn      func(fd uintptr) bool

	off       int    // where the next datagram of message next starts
	seg       int    // the GRO segment size of message next (0: one datagram)
	gro       bool   // UDP_GRO was asked for (readHandled, once)
	coalesced uint64 // messages that held more than one datagram

	// What received() reports; only the reader adds (one goroutine, so
	// no contention), the metrics read.
	stCalls, stMessages, stDatagrams atomic.Uint64
}

// received reports the batched receives so far.
func (u *rawUDP) received() RecvStats {
	r := u.rb
	return RecvStats{Calls: r.stCalls.Load(), Messages: r.stMessages.Load(), Datagrams: r.stDatagrams.Load()}
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
		h.Control = &r.cmsgs[i][0]
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
		r.hdrs[i].hdr.SetControllen(recvCmsgSlot)
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
		r.n, r.next, r.off, r.errno = int(n), 0, 0, errno
		r.calls++
		if errno == 0 {
			r.stCalls.Add(1)
			r.stMessages.Add(uint64(n))
		}
		return true
	}
}

// readHandled returns the next datagram h does not take, copied into b,
// offering h each datagram of each batch first. Writes are held while h
// works through a burst (see readHeld); they leave before the goroutine
// waits for more, or when a datagram goes to the caller.
//
// The first call turns on UDP GRO: from then on the socket must only be
// read this way (a plain read would get a GRO message whole).
func (u *rawUDP) readHandled(b []byte, h Handler) (int, netip.AddrPort, error) {
	u.rmu.Lock()
	defer u.rmu.Unlock()
	r := u.rb
	if !r.gro {
		r.gro = true
		_ = u.rc.Control(func(fd uintptr) {
			// Refused before Linux 5.0: each datagram is a message then.
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
		})
	}
	if r.next < r.n {
		// The rest of a batch whose previous datagram went to the caller
		// (which released the hold): hold its writes again.
		u.qmu.Lock()
		u.holding = true
		u.qmu.Unlock()
	}
	for {
		for r.next < r.n {
			d, i := r.datagram()
			from := sockaddrToAddrPort(&r.names[i])
			if r.hdrs[i].hdr.Flags&unix.MSG_TRUNC == 0 && h.Handle(d, from) {
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

// datagram returns the next datagram of the batch and the index of its
// message, and steps past it: a message is one datagram, or with GRO a run
// of datagrams of r.seg bytes (the last may be shorter).
func (r *recvBatch) datagram() ([]byte, int) {
	i := r.next
	m := &r.hdrs[i]
	if r.off == 0 {
		r.seg = groSegment(&m.hdr, &r.cmsgs[i])
		if r.seg > 0 && int(m.n) > r.seg {
			r.coalesced++
		}
	}
	d := r.bufs[i][r.off:m.n]
	if r.seg > 0 && len(d) > r.seg {
		d = d[:r.seg]
	}
	r.off += len(d)
	if r.off >= int(m.n) {
		r.next, r.off = r.next+1, 0
	}
	r.stDatagrams.Add(1)
	return d, i
}

// groSegment reads the UDP_GRO segment size from a message's control
// data; 0 when the kernel did not coalesce it. No allocation, unlike
// unix.ParseSocketControlMessage.
func groSegment(h *unix.Msghdr, c *[recvCmsgSlot]byte) int {
	n := int(h.Controllen)
	for off := 0; off+unix.SizeofCmsghdr <= n; {
		ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[off]))
		l := int(ch.Len)
		if l < unix.SizeofCmsghdr || off+l > n {
			return 0
		}
		if ch.Level == unix.SOL_UDP && ch.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			d := off + unix.CmsgLen(0)
			return int(int32(binary.NativeEndian.Uint32(c[d : d+4])))
		}
		off += unix.CmsgSpace(l - unix.CmsgLen(0))
	}
	return 0
}
