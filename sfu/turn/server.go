// Package turn is OpenVisit's embedded TURN relay (pion/turn) for
// participants whose networks reach the media node only through a relay.
// Credentials are time-limited, REST style (draft-uberti-behave-turn-rest):
// the username is "<expiry unix seconds>:<participant ID>" and the password
// the HMAC-SHA1 of the username under a server secret, so the control plane
// mints them without talking to the relay, and they end with the visit's
// join grant. Relays to loopback, link-local, private and other
// non-public addresses are refused unless configured (tests on loopback).
package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST credential scheme is HMAC-SHA1
	"encoding/base64"
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
)

// Realm is the TURN realm OpenVisit uses.
const Realm = "openvisit"

// Credentials returns TURN credentials for participant valid until expiry:
// user is "<expiry>:<participant>", pass is base64(HMAC-SHA1(secret, user)).
func Credentials(secret []byte, participant string, expiry time.Time) (user, pass string) {
	user = strconv.FormatInt(expiry.Unix(), 10) + ":" + participant
	return user, password(secret, user)
}

func password(secret []byte, user string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(user))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Params configures a Server.
type Params struct {
	// Addr is the UDP listen address ("0.0.0.0:3478"; "127.0.0.1:0" in tests).
	Addr string
	// RelayIP is the address relayed candidates advertise (the node's
	// public IP); default: Addr's IP, which must then be specific.
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
	conn    net.PacketConn
	srv     *turn.Server
	refused atomic.Uint64
}

// New validates p and starts the relay.
func New(p Params) (*Server, error) {
	if len(p.Secret) < 16 {
		return nil, errors.New("turn: secret of at least 16 bytes required")
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "turn")
	conn, err := net.ListenPacket("udp4", p.Addr)
	if err != nil {
		return nil, fmt.Errorf("turn: listen: %w", err)
	}
	relayIP := p.RelayIP
	if relayIP == nil {
		relayIP = conn.LocalAddr().(*net.UDPAddr).IP
		if relayIP.IsUnspecified() {
			_ = conn.Close()
			return nil, errors.New("turn: RelayIP is required when listening on all addresses")
		}
	}
	bind := conn.LocalAddr().(*net.UDPAddr).IP.String()
	s := &Server{conn: conn}
	secret := append([]byte(nil), p.Secret...)
	now := p.Now
	auth := func(ra *turn.RequestAttributes) (string, []byte, bool) {
		exp, participant, ok := strings.Cut(ra.Username, ":")
		if !ok {
			return "", nil, false
		}
		t, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || t < now().Unix() {
			return "", nil, false
		}
		return participant, turn.GenerateAuthKey(ra.Username, ra.Realm, password(secret, ra.Username)), true
	}
	permit := func(_ net.Addr, peer net.IP) bool {
		if p.AllowPrivatePeers || Public(peer) {
			return true
		}
		s.refused.Add(1)
		return false
	}
	s.srv, err = turn.NewServer(turn.ServerConfig{
		Realm:         Realm,
		AuthHandler:   auth,
		LoggerFactory: logging.PionLoggerFactory(log),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bind},
			PermissionHandler:     permit,
		}},
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("turn: %w", err)
	}
	log.Info("turn relay started", "addr", conn.LocalAddr().String(), "private_peers", p.AllowPrivatePeers)
	return s, nil
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

// Addr returns the relay's listen address.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// URL returns the turn: URL for host (the name or IP clients dial) on the
// relay's port.
func (s *Server) URL(host string) string {
	port := s.conn.LocalAddr().(*net.UDPAddr).Port
	return "turn:" + net.JoinHostPort(host, strconv.Itoa(port)) + "?transport=udp"
}

// Refused counts peers refused by the address policy.
func (s *Server) Refused() uint64 { return s.refused.Load() }

// Close stops the relay and its allocations.
func (s *Server) Close() error { return s.srv.Close() }
