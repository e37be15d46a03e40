// Package sfu is OpenVisit's media plane: a selective forwarding unit that
// keeps one room per visit, admits participants holding a join token over a
// WebSocket (PROTOCOL.md), and forwards every participant's audio and video
// to everyone else in the room over DTLS-SRTP.
package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	pionlogging "github.com/pion/logging"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/logging"
	"github.com/openvisit/openvisit/internal/token"
)

// Params configures an SFU.
type Params struct {
	Node       ids.NodeID
	Verifier   *token.Verifier
	Burner     token.Burner // burns the jti on join; ErrUsed -> token_used
	Origins    []string     // allowed Origin header values; empty refuses every browser origin
	Logger     *slog.Logger
	Registerer prometheus.Registerer // may be nil
	UDPAddr    string                // ICE UDP mux listen address; "127.0.0.1:0" in tests
	PublicIPs  []string              // NAT 1:1 IPs to advertise (optional)
	// ConfigureWebRTC lets callers (tests) adjust the SettingEngine: loopback
	// candidates, IP filters, mDNS off. Applied after the SFU's own settings.
	ConfigureWebRTC func(*webrtc.SettingEngine)
}

// Stats is a snapshot of an SFU's load.
type Stats struct {
	Rooms, Participants int
	// ForwardedPackets and ForwardedBytes count RTP sent to subscribers
	// (one packet to three subscribers counts three).
	ForwardedPackets, ForwardedBytes uint64
}

// SFU is one media node. Lifecycle: New opens the UDP port; ServeHTTP admits
// participants until Close, which removes everyone, closes the port and
// waits for every goroutine the SFU started. A closed SFU cannot be reused.
type SFU struct {
	node     ids.NodeID
	verifier *token.Verifier
	burner   token.Burner
	origins  map[string]bool
	log      *slog.Logger
	api      *webrtc.API
	mux      ice.UDPMux
	upgrader websocket.Upgrader
	reg      prometheus.Registerer
	metrics  []prometheus.Collector
	// joinTimeout is a field so that tests need not wait the real 10 s.
	joinTimeout time.Duration

	// ctx is cancelled by Close; it bounds the Burner calls of pending joins.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards rooms (and each room's contents), conns and closed. It is
	// never held while calling into Pion or waiting.
	mu     sync.Mutex
	rooms  map[ids.VisitID]*room
	conns  map[*wsConn]struct{}
	closed bool
	wg     sync.WaitGroup // one per ServeHTTP call that upgraded

	// Hot-path counters: atomics, read by Stats and the metrics collector.
	fwd forwardCounters
}

// New checks p, opens the ICE UDP mux on p.UDPAddr and registers metrics.
func New(p Params) (*SFU, error) {
	if p.Node == "" || p.Verifier == nil || p.Burner == nil || p.UDPAddr == "" {
		return nil, errors.New("sfu: Node, Verifier, Burner and UDPAddr are required")
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("node", string(p.Node))
	s := &SFU{
		node:        p.Node,
		verifier:    p.Verifier,
		burner:      p.Burner,
		origins:     make(map[string]bool, len(p.Origins)),
		log:         log,
		reg:         p.Registerer,
		rooms:       make(map[ids.VisitID]*room),
		joinTimeout: joinTimeout,
		conns:       make(map[*wsConn]struct{}),
	}
	for _, o := range p.Origins {
		s.origins[strings.ToLower(o)] = true
	}
	// The Origin check happens in ServeHTTP before the upgrade (so it can
	// answer 403); the upgrader itself accepts what got that far.
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		CheckOrigin:     func(*http.Request) bool { return true },
	}

	pionLogs := logging.PionLoggerFactory(log.With("component", "pion"))
	udp, err := net.ListenPacket("udp", p.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("sfu: listen udp: %w", err)
	}
	s.mux = webrtc.NewICEUDPMux(pionLogs.NewLogger("udpmux"), udp)

	api, err := newAPI(p, s.mux, pionLogs)
	if err != nil {
		_ = s.mux.Close()
		return nil, err
	}
	s.api = api
	s.ctx, s.cancel = context.WithCancel(context.Background())

	if err := s.registerMetrics(); err != nil {
		s.cancel()
		_ = s.mux.Close()
		return nil, err
	}
	log.Info("sfu started")
	return s, nil
}

// newAPI builds the one webrtc.API every PeerConnection of the node shares.
func newAPI(p Params, mux ice.UDPMux, logs pionlogging.LoggerFactory) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("sfu: codecs: %w", err)
	}
	// NACK, RTCP sender/receiver reports and TWCC feedback.
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, fmt.Errorf("sfu: interceptors: %w", err)
	}

	var se webrtc.SettingEngine
	se.LoggerFactory = logs
	// One UDP port for every peer: firewalls open one port, and the kernel
	// demultiplexes nothing; ICE ufrags do.
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if len(p.PublicIPs) > 0 {
		err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        p.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
		})
		if err != nil {
			return nil, fmt.Errorf("sfu: public IPs: %w", err)
		}
	}
	if p.ConfigureWebRTC != nil {
		p.ConfigureWebRTC(&se)
	}
	return webrtc.NewAPI(
		webrtc.WithMediaEngine(m),
		webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se),
	), nil
}

// Stats returns a snapshot of the node's load.
func (s *SFU) Stats() Stats {
	s.mu.Lock()
	st := Stats{Rooms: len(s.rooms)}
	for _, r := range s.rooms {
		st.Participants += len(r.participants)
	}
	s.mu.Unlock()
	st.ForwardedPackets = s.fwd.packets.Load()
	st.ForwardedBytes = s.fwd.bytes.Load()
	return st
}

// UDPAddr returns the address of the ICE UDP mux.
func (s *SFU) UDPAddr() net.Addr {
	addrs := s.mux.GetListenAddresses()
	if len(addrs) == 0 {
		return nil
	}
	return addrs[0]
}

// RemoveParticipant closes participant p of visit v with `removed`. It
// returns once p's media has stopped; false means p was not here.
func (s *SFU) RemoveParticipant(v ids.VisitID, p ids.ParticipantID) bool {
	s.mu.Lock()
	var found *participant
	if r := s.rooms[v]; r != nil {
		found = r.participants[p]
	}
	s.mu.Unlock()
	if found == nil {
		return false
	}
	found.kick(closeReason{code: CodeRemoved})
	return true
}

// RemoveSubject removes every participant whose token names subject (a
// disabled user, a revoked session) and returns how many there were.
func (s *SFU) RemoveSubject(subject string) int {
	if subject == "" {
		return 0
	}
	return s.removeWhere(closeReason{code: CodeRemoved}, func(p *participant) bool { return p.subject == subject })
}

// CloseRoom removes everyone from visit v (the visit ended) and returns how
// many participants there were.
func (s *SFU) CloseRoom(v ids.VisitID) int {
	return s.removeWhere(closeReason{code: CodeRemoved}, func(p *participant) bool { return p.visit == v })
}

func (s *SFU) removeWhere(why closeReason, match func(*participant) bool) int {
	var victims []*participant
	s.mu.Lock()
	for _, r := range s.rooms {
		for _, p := range r.participants {
			if match(p) {
				victims = append(victims, p)
			}
		}
	}
	s.mu.Unlock()
	for _, p := range victims {
		p.kick(why)
	}
	return len(victims)
}

// Close removes every participant, closes every socket and the UDP mux, and
// waits for the goroutines the SFU started.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	s.cancel()
	for _, c := range conns {
		c.kick(closeReason{close: closeGoingAway})
	}
	s.removeWhere(closeReason{close: closeGoingAway}, func(*participant) bool { return true })
	s.wg.Wait()
	for _, c := range s.metrics {
		s.reg.Unregister(c)
	}
	err := s.mux.Close()
	s.log.Info("sfu closed")
	return err
}

// registerMetrics exports the node's gauges and counters. They are read on
// scrape, so the hot path only touches atomics.
func (s *SFU) registerMetrics() error {
	if s.reg == nil {
		return nil
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "openvisit_sfu_rooms", Help: "Rooms (visits) open on this media node.",
		}, func() float64 { return float64(s.Stats().Rooms) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "openvisit_sfu_participants", Help: "Participants joined on this media node.",
		}, func() float64 { return float64(s.Stats().Participants) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_forwarded_packets_total", Help: "RTP packets forwarded to subscribers.",
		}, func() float64 { return float64(s.fwd.packets.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_forwarded_bytes_total", Help: "RTP bytes forwarded to subscribers.",
		}, func() float64 { return float64(s.fwd.bytes.Load()) }),
	}
	for i, c := range cs {
		if err := s.reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				s.reg.Unregister(done)
			}
			return fmt.Errorf("sfu: register metrics: %w", err)
		}
	}
	s.metrics = cs
	return nil
}
