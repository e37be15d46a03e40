package recording

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRecorderSocketsHaveRoomForBursts: the UDP sockets the recorder's
// ICE opens get a receive buffer larger than the kernel's default, as far
// as net.core.rmem_max allows.
func TestRecorderSocketsHaveRoomForBursts(t *testing.T) {
	rmax, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no /proc/sys/net/core/rmem_max here")
	}
	def, _ := os.ReadFile("/proc/sys/net/core/rmem_default")
	m, _ := strconv.Atoi(strings.TrimSpace(string(rmax)))
	d, _ := strconv.Atoi(strings.TrimSpace(string(def)))
	if m <= d {
		t.Skipf("rmem_max %d allows nothing above the default %d", m, d)
	}
	n := newBufferedNet()
	if n == nil {
		t.Fatal("no network")
	}
	c, err := n.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	uc, ok := c.(*net.UDPConn)
	if !ok {
		t.Fatalf("%T is not a *net.UDPConn", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	_ = rc.Control(func(fd uintptr) { got, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	if err != nil {
		t.Fatal(err)
	}
	// The kernel reports twice what was set (its bookkeeping overhead).
	if want := 2 * min(recvBuffer, m); got < want {
		t.Fatalf("receive buffer %d bytes, want %d (default %d)", got, want, 2*d)
	}
}
