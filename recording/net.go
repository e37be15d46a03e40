package recording

import (
	"net"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// recvBuffer is the kernel receive buffer asked for each UDP socket the
// recorder's ICE opens (the kernel caps it at net.core.rmem_max), as the
// SFU asks for its own (sfu.socketBuffer).
const recvBuffer = 4 << 20

// bufferedNet is the standard network with room for bursts on the UDP
// sockets ICE opens. The SFU sends a keyframe's packets together (one
// sendmmsg, GSO messages: a 720p keyframe is about a hundred datagrams),
// for every recorded participant at once; the kernel's default buffer
// (≈ 208 KiB) drops the tail of such a burst whenever the recorder is not
// scheduled in time, and each loss costs the frames up to the next
// keyframe.
type bufferedNet struct{ *stdnet.Net }

// newBufferedNet returns the network, or nil if the interfaces cannot be
// listed (Pion then uses its own).
func newBufferedNet() transport.Net {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil
	}
	return bufferedNet{n}
}

func (n bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err == nil {
		_ = c.SetReadBuffer(recvBuffer)
	}
	return c, err
}

func (n bufferedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if u, ok := c.(interface{ SetReadBuffer(int) error }); err == nil && ok {
		_ = u.SetReadBuffer(recvBuffer)
	}
	return c, err
}
