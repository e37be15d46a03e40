// Package reach decides whether browsers on other machines can reach a media
// node, from what the node advertises (its ICE candidates, relay and ICE-TCP)
// and where browsers reach the node's WebSocket. `openvisit serve` refuses
// to start on a Fatal finding and logs a Warning once; `openvisit doctor`
// prints every finding with its fix.
//
// What is known where: the configuration alone shows a loopback listen
// address (internal/config refuses it); the host's interfaces, known when
// the node starts, show whether any advertised address is routable at all
// and, when browsers dial the node by IP, whether that IP's kind (public or
// private) matches; a DNS name resolved at start may not be what browsers
// resolve (split-horizon DNS), so a mismatch there is only a Warning; what
// a browser's own network blocks is known only when its ICE fails (the SFU
// reports that once, with these settings).
package reach

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Scope is how far an address is reachable from, narrowest first.
type Scope int

const (
	Unknown   Scope = iota
	Loopback        // this machine only
	LinkLocal       // the same network link
	Private         // the same private network (RFC 1918, RFC 4193, CGNAT)
	Public          // anywhere
)

func (s Scope) String() string {
	return [...]string{"unknown", "loopback", "link-local", "private", "public"}[s]
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// ScopeOf classifies an address.
func ScopeOf(a netip.Addr) Scope {
	a = a.Unmap()
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast():
		return Unknown
	case a.IsLoopback():
		return Loopback
	case a.IsLinkLocalUnicast():
		return LinkLocal
	case a.IsPrivate(), cgnat.Contains(a):
		return Private
	}
	return Public
}

// Candidate is one ICE candidate the node gives participants.
type Candidate struct {
	Protocol string // "udp" or "tcp"
	Address  string // an IP address (public_ips rewrite included)
	Port     int
	Type     string // "host", "srflx", "relay"
}

func (c Candidate) String() string {
	a := addr(c.Address)
	if !a.IsValid() || c.Port < 0 || c.Port > 65535 {
		return fmt.Sprintf("%s %s:%d (%s)", c.Protocol, c.Address, c.Port, c.Type)
	}
	return fmt.Sprintf("%s %s (%s, %s)", c.Protocol, netip.AddrPortFrom(a, uint16(c.Port)), c.Type, ScopeOf(a))
}

func addr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

// Describe lists candidates for a log line or a report.
func Describe(cs []Candidate) string {
	if len(cs) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

// Input is what the checks look at: the settings (by their config key) and
// what the node advertises.
type Input struct {
	LoopbackOnly      bool     // media.loopback_only
	PublicIPs         []string // sfu.public_ips
	ICETCPAddr        string   // media.ice_tcp_addr
	TURNAddr          string   // media.turn.addr ("" when off)
	TURNRelayIP       string   // media.turn.public_ip, or the host of media.turn.addr
	TURNPrivatePeers  bool     // media.turn.allow_private_peers
	Candidates        []Candidate
	NodeHost          string       // host of cluster.node_url / public_url: where browsers dial the node
	NodeHostAddrs     []netip.Addr // NodeHost resolved (itself when an IP)
	NodeHostResolveOK bool         // NodeHostAddrs is known
}

// Severity orders findings.
type Severity int

const (
	Advice  Severity = iota // doctor only: a fallback that is off
	Warning                 // logged once at start; doctor reports a problem
	Fatal                   // serve refuses to start
)

func (s Severity) String() string { return [...]string{"advice", "warning", "fatal"}[s] }

// Finding is one problem with the settings that fix it.
type Finding struct {
	Severity Severity
	Settings []string // the config keys involved
	Problem  string
	Fix      string
}

func (f Finding) String() string {
	return f.Problem + " Fix: " + f.Fix
}

// Check returns the findings for in, most severe first.
func Check(in Input) []Finding {
	var out []Finding
	add := func(s Severity, problem, fix string, settings ...string) {
		out = append(out, Finding{Severity: s, Settings: settings, Problem: problem, Fix: fix})
	}
	if len(in.Candidates) == 0 {
		add(Fatal, "The media node advertises no ICE candidate: browsers have no address to send media to.",
			"set sfu.udp_addr to this host's address or 0.0.0.0:PORT (with sfu.public_ips behind NAT); with media.loopback_only, listen on a loopback address.",
			"sfu.udp_addr", "sfu.public_ips", "media.loopback_only")
		return out
	}
	if in.LoopbackOnly {
		return out // loopback by intent: browsers on this machine only (development)
	}
	best := bestScope(in)
	if len(in.PublicIPs) == 0 && best <= LinkLocal {
		add(Fatal, fmt.Sprintf("Every address the media node advertises is loopback or link-local (%s): no browser on another machine, and not the recorder, can reach it.", Describe(in.Candidates)),
			"set sfu.public_ips to the address browsers reach this host at, or run the node on a host with a routable interface; for a one-machine test set media.loopback_only: true (development only).",
			"sfu.udp_addr", "sfu.public_ips", "media.loopback_only")
		return out
	}
	out = append(out, nodeHostFindings(in, best)...)
	out = append(out, relayFindings(in)...)
	if in.ICETCPAddr == "" && in.TURNAddr == "" {
		add(Advice, "Neither ICE-TCP nor a TURN relay is on: browsers on networks that block UDP (some hospitals, hotels, corporate guest Wi-Fi) cannot connect.",
			"set media.ice_tcp_addr (a TCP port browsers can reach, e.g. 0.0.0.0:8443) and/or media.turn.addr.",
			"media.ice_tcp_addr", "media.turn.addr")
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return int(b.Severity) - int(a.Severity) })
	return out
}

// bestScope is the widest scope among the advertised candidates and the
// relay's address.
func bestScope(in Input) Scope {
	best := Unknown
	for _, c := range in.Candidates {
		best = max(best, ScopeOf(addr(c.Address)))
	}
	if in.TURNAddr != "" {
		best = max(best, ScopeOf(addr(in.TURNRelayIP)))
	}
	return best
}

// nodeHostFindings compares where browsers dial the node with what it
// advertises: browsers that reach it at a public address are on the
// internet, and need a public media address.
func nodeHostFindings(in Input, best Scope) []Finding {
	if !in.NodeHostResolveOK || len(in.PublicIPs) > 0 {
		return nil
	}
	need := Unknown
	for _, a := range in.NodeHostAddrs {
		need = max(need, ScopeOf(a))
	}
	if need != Public || best >= Public {
		return nil
	}
	sev := Warning
	via := fmt.Sprintf("%s resolves to a public address here", in.NodeHost)
	if _, err := netip.ParseAddr(in.NodeHost); err == nil {
		sev, via = Fatal, in.NodeHost+" is a public address"
	}
	return []Finding{{
		Severity: sev,
		Settings: []string{"sfu.public_ips", "public_url", "cluster.node_url"},
		Problem: fmt.Sprintf("Browsers reach this node at %s (%s), but the media addresses it advertises are not public (%s): browsers on the internet cannot send it media.",
			in.NodeHost, via, Describe(in.Candidates)),
		Fix: "set sfu.public_ips to the public address that forwards sfu.udp_addr's UDP port to this host (1:1 NAT), or enable the relay with a public media.turn.public_ip.",
	}}
}

// relayFindings checks the embedded TURN relay against the node.
func relayFindings(in Input) []Finding {
	if in.TURNAddr == "" {
		return nil
	}
	var out []Finding
	if s := ScopeOf(addr(in.TURNRelayIP)); s <= LinkLocal {
		out = append(out, Finding{Severity: Fatal, Settings: []string{"media.turn.public_ip", "media.turn.addr"},
			Problem: fmt.Sprintf("The TURN relay advertises %q (%s): browsers cannot reach it.", in.TURNRelayIP, s),
			Fix:     "set media.turn.public_ip to the address browsers reach the relay at."})
	}
	if in.TURNPrivatePeers {
		return out
	}
	for _, c := range in.Candidates {
		if c.Protocol == "udp" && ScopeOf(addr(c.Address)) == Public {
			return out // the relay forwards UDP only
		}
	}
	return append(out, Finding{Severity: Warning, Settings: []string{"media.turn.allow_private_peers"},
		Problem: "The TURN relay refuses private peers, and every UDP address of the media node is private: relayed calls cannot reach the node.",
		Fix:     "set media.turn.allow_private_peers: true when the relay and the node share a private network."})
}
