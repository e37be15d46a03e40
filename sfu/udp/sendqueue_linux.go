//go:build linux && (amd64 || arm64)

package udp

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	sendQueueLen = 64        // datagrams held at most; a full queue is sent
	sendSlot     = 1500 + 64 // a held datagram's room: RTP at any MTU a peer may use, and its SRTP tag

	// One GSO send: the kernel takes up to 64 segments and 64 KiB.
	gsoMaxSegments = 32
	gsoMaxBytes    = 60000
)

var gsoCmsgSpace = unix.CmsgSpace(2)

// mmsghdr is struct mmsghdr (64-bit layout).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// putPort stores port in network byte order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// udpSendQueue holds datagrams and sends them with one sendmmsg, grouping
// runs of equal-size datagrams to one address into UDP GSO messages. All
// of it is preallocated: queueing and sending allocate nothing.
type udpSendQueue struct {
	n    int
	lens [sendQueueLen]uint16
	dst  [sendQueueLen]netip.AddrPort
	bufs [sendQueueLen][sendSlot]byte

	// Built by build for one sendmmsg.
	group [sendQueueLen]uint8 // message of each datagram
	msgs  [sendQueueLen]gsoMsg
	nmsg  int
	hdrs  [sendQueueLen]mmsghdr
	iovs  [sendQueueLen]unix.Iovec
	sa4   [sendQueueLen]unix.RawSockaddrInet4
	sa6   [sendQueueLen]unix.RawSockaddrInet6
	cmsgs [sendQueueLen][32]byte
}

// gsoMsg is one message: a datagram, or GSO segments of size seg (all but
// the last exactly seg long, as the kernel requires).
type gsoMsg struct {
	first  int // its first datagram (gives the address)
	seg    int
	count  int
	bytes  int
	closed bool // no more segments may join
	iov    int  // its first iovec
	filled int
}

// add queues a copy of b for addr; false if addr's family does not fit
// the socket.
func (q *udpSendQueue) add(b []byte, addr netip.AddrPort, v6 bool) bool {
	if !v6 && !addr.Addr().Unmap().Is4() {
		return false
	}
	i := q.n
	copy(q.bufs[i][:], b)
	q.lens[i] = uint16(len(b))
	q.dst[i] = addr
	q.n++
	return true
}

// build lays the queued datagrams out as messages. With gso, a datagram
// joins the newest message to its address when it is no longer than that
// message's segments and the message is still open; a shorter one closes
// it. Each address keeps at most one open message, so a peer's datagrams
// leave in the order they were queued.
func (q *udpSendQueue) build(v6, gso bool) {
	q.nmsg = 0
	for i := 0; i < q.n; i++ {
		l := int(q.lens[i])
		m := -1
		if gso {
			for j := 0; j < q.nmsg; j++ {
				g := &q.msgs[j]
				if g.closed || q.dst[g.first] != q.dst[i] {
					continue
				}
				if l <= g.seg && g.count < gsoMaxSegments && g.bytes+l <= gsoMaxBytes {
					m = j
				} else {
					g.closed = true
				}
				break
			}
		}
		if m < 0 {
			m = q.nmsg
			q.msgs[m] = gsoMsg{first: i, seg: l}
			q.nmsg++
		}
		g := &q.msgs[m]
		g.count++
		g.bytes += l
		if l < g.seg {
			g.closed = true
		}
		q.group[i] = uint8(m)
	}
	iov := 0
	for j := 0; j < q.nmsg; j++ {
		q.msgs[j].iov, q.msgs[j].filled = iov, 0
		iov += q.msgs[j].count
	}
	for i := 0; i < q.n; i++ {
		g := &q.msgs[q.group[i]]
		v := &q.iovs[g.iov+g.filled]
		v.Base = &q.bufs[i][0]
		v.SetLen(int(q.lens[i]))
		g.filled++
	}
	for j := 0; j < q.nmsg; j++ {
		g := &q.msgs[j]
		h := &q.hdrs[j].hdr
		*h = unix.Msghdr{Iov: &q.iovs[g.iov]}
		h.SetIovlen(g.count)
		sa, salen, _ := sockaddrFor(q.dst[g.first], v6, &q.sa4[j], &q.sa6[j])
		h.Name, h.Namelen = (*byte)(sa), salen
		if g.count > 1 {
			c := q.cmsgs[j][:gsoCmsgSpace]
			ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			ch.Level, ch.Type = unix.SOL_UDP, unix.UDP_SEGMENT
			ch.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(g.seg)
			h.Control = &c[0]
			h.SetControllen(len(c))
		}
	}
}

// keepFrom drops the datagrams of messages before m (already sent) and
// moves the rest to the front.
func (q *udpSendQueue) keepFrom(m int) {
	k := 0
	for i := 0; i < q.n; i++ {
		if int(q.group[i]) < m {
			continue
		}
		if k != i {
			copy(q.bufs[k][:], q.bufs[i][:q.lens[i]])
			q.lens[k], q.dst[k] = q.lens[i], q.dst[i]
		}
		k++
	}
	q.n = k
}

// flushFD sends the queue on fd (qmu held). A message the kernel refuses
// is dropped, as a lost packet; a GSO message refused because the path
// cannot segment turns GSO off for good and is sent again one by one.
// It returns true: it is also a RawConn.Write callback that never waits.
func (u *rawUDP) flushFD(fd uintptr) bool {
	q := u.q
	if q.n == 0 {
		return true
	}
	gso := !u.noGSO.Load()
	q.build(u.v6, gso)
	for sent := 0; sent < q.nmsg; {
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&q.hdrs[sent])), uintptr(q.nmsg-sent), 0, 0, 0)
		u.sent.calls.Add(1)
		switch {
		case errno == 0:
			for _, g := range q.msgs[sent : sent+int(r)] {
				u.sent.datagrams.Add(uint64(g.count))
			}
			u.sent.messages.Add(uint64(r))
			sent += int(r)
		case errno == unix.EINTR:
		case gso && q.msgs[sent].count > 1 && (errno == unix.EIO || errno == unix.EINVAL || errno == unix.EOPNOTSUPP):
			u.noGSO.Store(true)
			gso = false
			q.keepFrom(sent)
			q.build(u.v6, false)
			sent = 0
		default:
			u.sent.dropped.Add(uint64(q.msgs[sent].count))
			sent++
		}
	}
	q.n = 0
	return true
}

// sockaddrFor fills the sockaddr for addr on an IPv4 or IPv6 socket.
func sockaddrFor(addr netip.AddrPort, v6 bool, sa4 *unix.RawSockaddrInet4, sa6 *unix.RawSockaddrInet6) (unsafe.Pointer, uint32, error) {
	ip := addr.Addr()
	if v6 {
		*sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			ifc, err := net.InterfaceByName(z)
			if err != nil {
				return nil, 0, err
			}
			sa6.Scope_id = uint32(ifc.Index)
		}
		putPort(&sa6.Port, addr.Port())
		return unsafe.Pointer(sa6), unix.SizeofSockaddrInet6, nil
	}
	if !ip.Unmap().Is4() {
		return nil, 0, errAddrFamily
	}
	*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
	putPort(&sa4.Port, addr.Port())
	return unsafe.Pointer(sa4), unix.SizeofSockaddrInet4, nil
}
