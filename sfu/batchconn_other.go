//go:build !(linux && (amd64 || arm64))

package sfu

import (
	"errors"
	"net"
	"time"
)

// newBatchConn is unavailable here: writes stay one system call each.
func newBatchConn(*net.UDPConn, time.Duration) (net.PacketConn, error) {
	return nil, errors.New("sfu: batched UDP writes need linux on amd64 or arm64")
}
