// Package turn is OpenVisit's embedded TURN relay (pion/turn) for
// participants whose networks reach the media node only through a relay.
// Credentials are time-limited, REST style (internal/turncred), so the
// control plane mints them without talking to the relay, and they end with
// the visit's join grant. Relays to loopback, link-local, private and other
// non-public addresses are refused unless configured (tests on loopback).
package turn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"

	"github.com/openvisit/openvisit/internal/logging"
	"github.com/openvisit/openvisit/internal/turncred"
)

// Realm is the TURN realm OpenVisit uses.
const Realm = "openvisit"

// Params configures a Server. At least one of Addr, TCPAddr and TLSAddr is
// set; whichever way a client reaches the relay, what it relays to the
// media node is UDP.
type Params struct {
	// Addr is the UDP listen address ("0.0.0.0:3478"; "127.0.0.1:0" in tests).
	Addr string
	// TCPAddr is the TURN-over-TCP listen address, for networks that block
	// UDP; empty: none.
	TCPAddr string
	// TLSAddr is the TURN-over-TLS listen address (":443" on a node that has
	// the port to itself), for networks that pass only HTTPS-looking
	// traffic; it needs TLS. Empty: none.
	TLSAddr string
	// TLS is the server side of TURN over TLS: the HTTPS listener's
	// certificate source, so one certificate covers both.
	TLS *tls.Config
	// RelayIP is the address relayed candidates advertise (the node's
	// public IP); default: the first listener's IP, which must then be
	// specific.
	RelayIP net.IP
	// Secret keys the credentials (at least 16 bytes).
	Secret []byte
	// AllowPrivatePeers permits relaying to loopback, link-local and private
	// addresses (tests, a clinic LAN). Off, they are refused: a relay must
	// not become a way into the server's own network.
	AllowPrivatePeers bool
	Logger            *slog.Logger
	Now               func() time.Time
}

// Server is a running TURN relay. Lifecycle: New listens → serves → Close.
type Server struct {
	conn    net.PacketConn // nil without UDP
	tcp     net.Listener   // nil without TURN over TCP
	tls     net.Listener   // nil without TURN over TLS
	srv     *turn.Server
	refused atomic.Uint64
}

// New validates p and starts the relay.
func New(p Params) (*Server, error) {
	if len(p.Secret) < 16 {
		return nil, errors.New("turn: secret of at least 16 bytes required")
	}
	if p.TLSAddr != "" && p.TLS == nil {
		return nil, errors.New("turn: TURN over TLS needs a certificate")
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "turn")
	s := &Server{}
	if err := s.listen(p); err != nil {
		s.closeListeners()
		return nil, err
	}
	cfg, err := s.serverConfig(p, log)
	if err == nil {
		s.srv, err = turn.NewServer(cfg)
	}
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("turn: %w", err)
	}
	log.Info("turn relay started", "udp", addrString(s.conn), "tcp", listenerString(s.tcp),
		"tls", listenerString(s.tls), "private_peers", p.AllowPrivatePeers)
	return s, nil
}

// listen opens the configured listeners.
func (s *Server) listen(p Params) error {
	var err error
	if p.Addr != "" {
		if s.conn, err = net.ListenPacket("udp4", p.Addr); err != nil {
			return fmt.Errorf("turn: listen udp: %w", err)
		}
	}
	if p.TCPAddr != "" {
		if s.tcp, err = net.Listen("tcp4", p.TCPAddr); err != nil {
			return fmt.Errorf("turn: listen tcp: %w", err)
		}
	}
	if p.TLSAddr != "" {
		l, err := net.Listen("tcp4", p.TLSAddr)
		if err != nil {
			return fmt.Errorf("turn: listen tls: %w", err)
		}
		s.tls = tls.NewListener(l, p.TLS)
	}
	if s.conn == nil && s.tcp == nil && s.tls == nil {
		return errors.New("turn: no listen address")
	}
	return nil
}

// serverConfig builds pion/turn's configuration: one relay address policy
// and one credential check for every listener.
func (s *Server) serverConfig(p Params, log *slog.Logger) (turn.ServerConfig, error) {
	bindIP := s.bindIP()
	relayIP := p.RelayIP
	if relayIP == nil {
		relayIP = bindIP
		if relayIP.IsUnspecified() {
			return turn.ServerConfig{}, errors.New("RelayIP is required when listening on all addresses")
		}
	}
	gen := &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bindIP.String()}
	permit := func(_ net.Addr, peer net.IP) bool {
		if p.AllowPrivatePeers || Public(peer) {
			return true
		}
		s.refused.Add(1)
		return false
	}
	cfg := turn.ServerConfig{Realm: Realm, AuthHandler: authHandler(p.Secret, p.Now), LoggerFactory: logging.PionLoggerFactory(log)}
	if s.conn != nil {
		cfg.PacketConnConfigs = []turn.PacketConnConfig{{PacketConn: s.conn, RelayAddressGenerator: gen, PermissionHandler: permit}}
	}
	for _, l := range []net.Listener{s.tcp, s.tls} {
		if l != nil {
			cfg.ListenerConfigs = append(cfg.ListenerConfigs, turn.ListenerConfig{Listener: l, RelayAddressGenerator: gen, PermissionHandler: permit})
		}
	}
	return cfg, nil
}

// bindIP is the local address relays are opened on: the first listener's.
func (s *Server) bindIP() net.IP {
	switch {
	case s.conn != nil:
		return s.conn.LocalAddr().(*net.UDPAddr).IP
	case s.tcp != nil:
		return s.tcp.Addr().(*net.TCPAddr).IP
	default:
		return s.tls.Addr().(*net.TCPAddr).IP
	}
}

// authHandler checks REST-style credentials: unexpired, and the password
// is the HMAC of the username under secret.
func authHandler(secret []byte, now func() time.Time) func(*turn.RequestAttributes) (string, []byte, bool) {
	secret = append([]byte(nil), secret...)
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		exp, participant, ok := strings.Cut(ra.Username, ":")
		if !ok {
			return "", nil, false
		}
		t, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || t < now().Unix() {
			return "", nil, false
		}
		return participant, turn.GenerateAuthKey(ra.Username, ra.Realm, turncred.Password(secret, ra.Username)), true
	}
}

func (s *Server) closeListeners() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	for _, l := range []net.Listener{s.tcp, s.tls} {
		if l != nil {
			_ = l.Close()
		}
	}
}

func addrString(c net.PacketConn) string {
	if c == nil {
		return "off"
	}
	return c.LocalAddr().String()
}

func listenerString(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}

// Public reports whether ip may be a relay peer by default: not loopback,
// link-local, private (RFC 1918, RFC 4193), CGNAT, unspecified or multicast.
func Public(ip net.IP) bool {
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	if v4 := ip.To4(); v4 != nil && v4[0] == 100 && v4[1]&0xc0 == 64 { // 100.64.0.0/10
		return false
	}
	return true
}

// URLs returns the relay's URLs for host (the name or IP clients dial).
func (s *Server) URLs(host string) []string {
	udp := ""
	if s.conn != nil {
		udp = portOf(s.conn.LocalAddr())
	}
	return URLs(host, udp, listenerPort(s.tcp), listenerPort(s.tls))
}

// URLs returns the URLs of a relay reached at host on the given ports ("" for
// a transport it does not serve), most direct first: UDP, TCP, then TLS
// (turns:), the order browsers prefer anyway.
func URLs(host, udpPort, tcpPort, tlsPort string) []string {
	var urls []string
	if udpPort != "" {
		urls = append(urls, "turn:"+net.JoinHostPort(host, udpPort)+"?transport=udp")
	}
	if tcpPort != "" {
		urls = append(urls, "turn:"+net.JoinHostPort(host, tcpPort)+"?transport=tcp")
	}
	if tlsPort != "" {
		urls = append(urls, "turns:"+net.JoinHostPort(host, tlsPort)+"?transport=tcp")
	}
	return urls
}

func listenerPort(l net.Listener) string {
	if l == nil {
		return ""
	}
	return portOf(l.Addr())
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// Refused counts peers refused by the address policy.
func (s *Server) Refused() uint64 { return s.refused.Load() }

// Close stops the relay and its allocations.
func (s *Server) Close() error { return s.srv.Close() }
