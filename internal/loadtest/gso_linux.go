package loadtest

import (
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
