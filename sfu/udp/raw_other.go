//go:build !(linux && (amd64 || arm64))

package udp

import "net"

// readerWriter returns c's allocation-free reader and writer: the
// standard library's here (raw system calls and held writes are Linux's).
func readerWriter(c *net.UDPConn, _ *counters) addrPortConn { return udpAddrPort{c} }
