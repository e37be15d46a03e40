//go:build !linux

package loadtest

import "net"

func gsoControl(int) []byte { return nil }

const groOOB = 0

func enableGRO(*net.UDPConn) {}

func groSegment([]byte) int { return 0 }

const gsoSupported = false
