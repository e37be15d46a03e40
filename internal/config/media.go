package config

import (
	"fmt"
	"net"
	"net/netip"
)

// validateMediaReach refuses media addresses that the configuration alone
// shows no browser on another machine can reach. What depends on the host
// (its interfaces, DNS) is checked when the media node starts
// (internal/reach).
func (c Config) validateMediaReach() []error {
	if !c.Has(RoleMedia) {
		return nil
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	const oneMachine = "for a one-machine test set media.loopback_only: true (development only)"
	if a, ok := listenIP(c.SFU.UDPAddr); ok && !c.Media.LoopbackOnly {
		switch {
		case a.IsLoopback():
			bad("sfu.udp_addr: %s is a loopback address, so no browser on another machine, and not even the recorder, can reach the media port (ICE leaves loopback out unless media.loopback_only is set); listen on this host's address or 0.0.0.0:PORT (with sfu.public_ips behind NAT), or %s",
				c.SFU.UDPAddr, oneMachine)
		case a.IsLinkLocalUnicast() && len(c.SFU.PublicIPs) == 0:
			bad("sfu.udp_addr: %s is a link-local address that browsers elsewhere cannot reach; listen on a routable address or 0.0.0.0:PORT, or set sfu.public_ips", c.SFU.UDPAddr)
		case a.IsMulticast():
			bad("sfu.udp_addr: %s is a multicast address; listen on this host's address or 0.0.0.0:PORT", c.SFU.UDPAddr)
		}
	}
	for _, s := range c.SFU.PublicIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue // reported by Validate
		}
		if a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsMulticast() {
			bad("sfu.public_ips: %s cannot be reached by browsers on other machines; list the address browsers reach this host's sfu.udp_addr port at (the NAT's public address)", s)
		}
	}
	if a, ok := listenIP(c.Media.ICETCPAddr); ok && a.IsLoopback() && !c.Media.LoopbackOnly {
		bad("media.ice_tcp_addr: %s is a loopback address that browsers elsewhere cannot reach; listen on this host's address or 0.0.0.0:PORT, or %s", c.Media.ICETCPAddr, oneMachine)
	}
	if t := c.Media.TURN; t.On() && !c.Media.LoopbackOnly {
		if a, err := netip.ParseAddr(t.PublicIP); err == nil && (a.IsLoopback() || a.IsUnspecified()) {
			bad("media.turn.public_ip: %s cannot be reached by browsers on other machines; set the address browsers reach the relay at", t.PublicIP)
		} else if a, ok := listenIP(t.First()); ok && t.PublicIP == "" && a.IsLoopback() {
			bad("media.turn.addr: %s is a loopback address that browsers elsewhere cannot reach; listen on this host's address, or %s", t.First(), oneMachine)
		}
	}
	return errs
}

// listenIP returns the IP of a host:port listen address ("localhost"
// counts as loopback); ok is false for a name or an unparsable address.
func listenIP(hostport string) (netip.Addr, bool) {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.Addr{}, false
	}
	if h == "localhost" {
		return netip.IPv6Loopback(), true
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// On reports whether the relay listens at all.
func (t TURN) On() bool { return t.First() != "" }

// First is the relay's first listen address (UDP, then TCP, then TLS): the
// one whose IP relayed candidates advertise when public_ip is empty.
func (t TURN) First() string {
	for _, a := range []string{t.Addr, t.TCPAddr, t.TLSAddr} {
		if a != "" {
			return a
		}
	}
	return ""
}

func (t TURN) firstHost() string {
	h, _, _ := net.SplitHostPort(t.First())
	return h
}
