package loadtest

import (
	"encoding/binary"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoControl is the control message that has the kernel cut a message
// into datagrams of seg bytes (UDP_SEGMENT, Linux ≥ 4.18): one trip down
// the stack for a frame's packets instead of one each.
func gsoControl(seg int) []byte {
	c := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(seg) //nolint:gosec // ≤ datagramSize
	return c
}

const gsoSupported = true

// groOOB is the room for the UDP_GRO control message (an int).
const groOOB = 32

// enableGRO asks the kernel to hand c runs of a peer's equal-size
// datagrams as one message (UDP_GRO, Linux ≥ 5.0) — what the SFU's GSO
// sends are — instead of splitting each one out on our CPU's account.
func enableGRO(c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
	})
}

// groSegment returns the datagram size of a GRO message from its control
// data, 0 when it is one datagram.
func groSegment(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(int32(binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):])))
		}
		sp := unix.CmsgSpace(l - unix.CmsgLen(0))
		if sp > len(oob) {
			return 0
		}
		oob = oob[sp:]
	}
	return 0
}
