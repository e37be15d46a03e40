//go:build !(linux && (amd64 || arm64))

package sfu

import "net"

// udpReaderWriter returns c's allocation-free reader and writer: the
// standard library's here.
func udpReaderWriter(c *net.UDPConn, _ *sendCounters) addrPortConn { return udpAddrPort{c} }
