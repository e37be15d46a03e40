// Package sfu is OpenVisit's media plane: a selective forwarding unit that
// keeps one room per visit, admits participants holding a join token over a
// WebSocket (PROTOCOL.md), and forwards every participant's audio and video
// to everyone else in the room over DTLS-SRTP.
//
// Beside it: sfu/udp is a forwarding worker's UDP socket (raw system
// calls, batched receives and sends; workers.go shards rooms over them), sfu/srtpkeys learns each connection's SRTP keys
// from its DTLS handshake for the receive fast path (fastpath.go), and
// sfu/turn is the embedded TURN relay. What a participant's role means
// for its media is decided once, at join (policy.go).
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
	"sync/atomic"
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
	"github.com/openvisit/openvisit/sfu/protocol"
	"github.com/openvisit/openvisit/sfu/udp"
)

// socketBuffer is the size asked for the ICE UDP socket's kernel buffers.
const socketBuffer = 4 << 20

// Params configures an SFU.
type Params struct {
	Node       ids.NodeID
	Verifier   *token.Verifier
	Burner     token.Burner // burns the jti on join; ErrUsed -> token_used
	Origins    []string     // allowed Origin header values; empty refuses every browser origin
	Logger     *slog.Logger
	Registerer prometheus.Registerer // may be nil
	UDPAddr    string                // ICE UDP mux listen address; "127.0.0.1:0" in tests
	// Workers is the number of forwarding workers (workers.go), each on
	// its own UDP port: UDPAddr's port and the ones after it (all
	// ephemeral when UDPAddr's port is 0). 0: one per core.
	Workers int
	// TCPAddr, when set, is the ICE-TCP listen address: one TCP port for
	// every peer, the fallback for networks that block UDP.
	TCPAddr   string
	PublicIPs []string // NAT 1:1 IPs to advertise (optional)
	// NoBandwidthEstimation turns GCC off: subscribers then get the best
	// layer their display needs. GCC costs two allocations per packet sent.
	NoBandwidthEstimation bool
	// NoFastPath leaves received media to Pion's receive goroutines
	// (fastpath.go explains the fast path).
	NoFastPath bool
	// ConfigureWebRTC lets callers (tests) adjust the SettingEngine: loopback
	// candidates, IP filters, mDNS off. Applied after the SFU's own settings.
	ConfigureWebRTC func(*webrtc.SettingEngine)
	// OnMediaState, when set, is told of every change of a participant's
	// media state (mediastate.go), in order per participant, from one
	// goroutine of the SFU's own; it may block (it writes a database), and
	// Close waits for the changes queued before it.
	OnMediaState func(MediaStateChange)
}

// Stats is a snapshot of an SFU's load.
type Stats struct {
	Rooms, Participants int
	// ForwardedPackets and ForwardedBytes count RTP sent to subscribers
	// (one packet to three subscribers counts three).
	ForwardedPackets, ForwardedBytes uint64
	// DroppedPackets counts packets a congested subscriber's queue could
	// not take (video then waits for a keyframe).
	DroppedPackets uint64
	// FastPathPackets counts received RTP the receive fast path took
	// (forwarded, or dropped as forged or replayed) instead of Pion.
	FastPathPackets uint64
	// BatchedDatagrams counts datagrams the mux socket sent in batches
	// (held while the fast path forwarded a burst), BatchMessages the
	// sendmmsg messages that carried them (fewer: GSO) and BatchSends the
	// sendmmsg calls.
	BatchedDatagrams, BatchMessages, BatchSends uint64
	// ReceivedDatagrams counts datagrams the media sockets read in batches,
	// ReceivedMessages the recvmmsg messages that held them (fewer: GRO)
	// and ReceiveCalls the recvmmsg calls.
	ReceivedDatagrams, ReceivedMessages, ReceiveCalls uint64
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
	// The parts of every PeerConnection's API; newPeerConnection makes
	// one API per connection, for its own DTLS key hooks.
	media *webrtc.MediaEngine
	ireg  *interceptor.Registry
	se    webrtc.SettingEngine
	// workers forward media, each on its own socket with its own
	// receive fast path (workers.go, fastpath.go); placed maps a room
	// with participants to its worker (under mu). forceWorker, set by
	// tests, overrides placement for a participant.
	workers     []*worker
	placed      map[ids.VisitID]*placement
	forceWorker func(ids.VisitID, ids.ParticipantID) (int, bool)
	noFastPath  bool
	tcpMux      ice.TCPMux // nil without Params.TCPAddr
	tcpLn       net.Listener
	upgrader    websocket.Upgrader
	reg         prometheus.Registerer
	metrics     []prometheus.Collector
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

	// Counters: atomics, read by Stats and the metrics collector (the
	// hot path's own are per worker).
	wsStats wsCounters  // limits.go
	iceFail iceFailures // advertise.go
	states  mediaStates // mediastate.go

	bwe          bweSlot
	trackSeq     atomic.Uint64 // track IDs, unique on the node
	lossPermille atomic.Uint32 // SetOutboundLoss (SetSubscriberLoss: per PeerConnection, in its loss)
	bwCap        atomic.Int64  // SetSubscriberBandwidthCap
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
		placed:      make(map[ids.VisitID]*placement),
		joinTimeout: joinTimeout,
		conns:       make(map[*wsConn]struct{}),
		noFastPath:  p.NoFastPath,
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
	n, err := workerCount(p.Workers)
	if err != nil {
		return nil, err
	}
	if err := s.openWorkers(p.UDPAddr, n, pionLogs); err != nil {
		return nil, err
	}
	if p.TCPAddr != "" {
		s.tcpLn, err = net.Listen("tcp", p.TCPAddr)
		if err != nil {
			s.closeMuxes()
			return nil, fmt.Errorf("sfu: listen tcp: %w", err)
		}
		s.tcpMux = webrtc.NewICETCPMux(pionLogs.NewLogger("tcpmux"), s.tcpLn, 64)
	}

	if err := s.newAPI(p, pionLogs); err != nil {
		s.closeMuxes()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	if err := s.registerMetrics(); err != nil {
		s.cancel()
		s.closeMuxes()
		return nil, err
	}
	if p.OnMediaState != nil {
		s.states.start(p.OnMediaState)
	}
	log.Info("sfu started")
	return s, nil
}

func (s *SFU) closeMuxes() error {
	var err error
	for _, w := range s.workers {
		if e := w.mux.Close(); e != nil && err == nil {
			err = e
		}
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
		_ = s.tcpLn.Close()
	}
	return err
}

// TCPAddr returns the address of the ICE-TCP listener (nil without one).
func (s *SFU) TCPAddr() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

// SetOutboundLoss makes the node drop permille/1000 of the RTP it sends to
// every subscriber (after the NACK responder has kept a copy, so
// retransmission can repair it); SetSubscriberLoss does it for one. It is a
// fault-injection hook for tests and diagnostics; 0 turns it off.
func (s *SFU) SetOutboundLoss(permille int) {
	s.lossPermille.Store(uint32(min(max(permille, 0), 1000))) //nolint:gosec // clamped
}

// SetSubscriberLoss makes the node drop permille/1000 of the RTP it sends
// to participant p of visit v only (after the NACK responder has kept a
// copy, as SetOutboundLoss), whatever it sends to anyone else; 0 turns it
// off. The node-wide rate, when higher, still applies. It lasts as long as
// p's connection (a rejoin starts clean) and reports false when p is not
// here. A fault-injection hook for tests and diagnostics.
func (s *SFU) SetSubscriberLoss(v ids.VisitID, p ids.ParticipantID, permille int) bool {
	s.mu.Lock()
	var found *participant
	if r := s.rooms[v]; r != nil {
		found = r.participants[p]
	}
	s.mu.Unlock()
	if found == nil || found.prep == nil || found.prep.loss == nil {
		return false
	}
	found.prep.loss.permille.Store(uint32(min(max(permille, 0), 1000))) //nolint:gosec // clamped
	return true
}

// SetSubscriberBandwidthCap caps every subscriber's bandwidth estimate at
// bps (0: no cap), as if their downlinks were that narrow: layer selection
// then picks lower simulcast layers. A test and diagnostics hook.
func (s *SFU) SetSubscriberBandwidthCap(bps int64) {
	s.bwCap.Store(max(bps, 0))
}

// newAPI builds what every PeerConnection's webrtc.API shares: codecs,
// interceptors and settings.
func (s *SFU) newAPI(p Params, logs pionlogging.LoggerFactory) error {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return fmt.Errorf("sfu: codecs: %w", err)
	}
	reg := &interceptor.Registry{}
	if err := s.registerInterceptors(m, reg, !p.NoBandwidthEstimation); err != nil {
		return fmt.Errorf("sfu: interceptors: %w", err)
	}

	var se webrtc.SettingEngine
	se.LoggerFactory = logs
	// One UDP port per worker, shared by its rooms' peers: ICE ufrags
	// demultiplex. newPeerConnection sets the participant's worker's mux;
	// this one is for Advertised.
	se.SetICEUDPMux(s.workers[0].mux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.tcpMux != nil {
		// ICE-TCP (passive) on one port: the fallback when UDP is blocked.
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	if len(p.PublicIPs) > 0 {
		err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        p.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
		})
		if err != nil {
			return fmt.Errorf("sfu: public IPs: %w", err)
		}
	}
	if p.ConfigureWebRTC != nil {
		p.ConfigureWebRTC(&se)
	}
	// The SFU is the DTLS server whichever side offers (a browser that
	// offers actpass accepts a passive answer): the ServerHello it sends
	// is what lets the fast path learn the connection's SRTP keys.
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return fmt.Errorf("sfu: dtls role: %w", err)
	}
	s.media, s.ireg, s.se = m, reg, se
	return nil
}

// Stats returns a snapshot of the node's load.
func (s *SFU) Stats() Stats {
	s.mu.Lock()
	st := Stats{Rooms: len(s.rooms)}
	for _, r := range s.rooms {
		st.Participants += len(r.participants)
	}
	s.mu.Unlock()
	for _, w := range s.workers {
		st.ForwardedPackets += w.fwd.packets.Load()
		st.ForwardedBytes += w.fwd.bytes.Load()
		st.DroppedPackets += w.fwd.dropped.Load()
		st.FastPathPackets += w.fast.handled.Load()
	}
	sent := s.sent()
	st.BatchedDatagrams, st.BatchMessages, st.BatchSends = sent.Datagrams, sent.Messages, sent.Calls
	recv := s.received()
	st.ReceivedDatagrams, st.ReceivedMessages, st.ReceiveCalls = recv.Datagrams, recv.Messages, recv.Calls
	return st
}

// sent is what the media sockets sent in batches.
func (s *SFU) sent() (st udp.SendStats) {
	for _, w := range s.workers {
		if w.sock != nil {
			st = st.Add(w.sock.Sent())
		}
	}
	return st
}

// received is what the media sockets received in batches.
func (s *SFU) received() (st udp.RecvStats) {
	for _, w := range s.workers {
		if w.sock != nil {
			st = st.Add(w.sock.Received())
		}
	}
	return st
}

// UDPAddr returns the address of the first worker's ICE UDP mux (Workers
// lists them all).
func (s *SFU) UDPAddr() net.Addr {
	addrs := s.workers[0].mux.GetListenAddresses()
	if len(addrs) == 0 {
		return nil
	}
	return addrs[0]
}

// LiveTokens appends the ID of the join token that admitted each
// participant on the node to dst: what a revocation check
// (internal/revocation) asks the database about.
func (s *SFU) LiveTokens(dst []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rooms {
		for _, p := range r.participants {
			dst = append(dst, p.tokenID)
		}
	}
	return dst
}

// Revoke ends the participant admitted by join token tokenID with
// `removed` (4010): the visit ended, they were removed, or the session
// that let them in ended. It returns once their media has stopped; false
// means no such participant is here.
func (s *SFU) Revoke(tokenID string) bool {
	if tokenID == "" {
		return false
	}
	return s.removeWhere(closeReason{code: protocol.CodeRemoved}, func(p *participant) bool { return p.tokenID == tokenID }) > 0
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
		c.kick(closeReason{close: protocol.CloseGoingAway})
	}
	s.removeWhere(closeReason{close: protocol.CloseGoingAway}, func(*participant) bool { return true })
	s.wg.Wait()
	s.states.stop() // after every participant left: their last states are delivered
	for _, c := range s.metrics {
		s.reg.Unregister(c)
	}
	err := s.closeMuxes()
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
		}, func() float64 { return float64(s.Stats().ForwardedPackets) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_forwarded_bytes_total", Help: "RTP bytes forwarded to subscribers.",
		}, func() float64 { return float64(s.Stats().ForwardedBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_dropped_packets_total",
			Help: "RTP packets a congested subscriber's queue could not take (video then waits for a keyframe).",
		}, func() float64 { return float64(s.Stats().DroppedPackets) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_fast_path_packets_total",
			Help: "Received RTP packets the receive fast path took instead of Pion's receive goroutines.",
		}, func() float64 { return float64(s.Stats().FastPathPackets) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_udp_batched_datagrams_total",
			Help: "Datagrams the media socket sent in batches (held while a received burst was forwarded).",
		}, func() float64 { return float64(s.sent().Datagrams) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_udp_batch_messages_total",
			Help: "sendmmsg messages that carried the batched datagrams (a UDP GSO message carries several).",
		}, func() float64 { return float64(s.sent().Messages) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_udp_batch_sends_total",
			Help: "sendmmsg system calls of the media socket.",
		}, func() float64 { return float64(s.sent().Calls) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_udp_received_datagrams_total",
			Help: "Datagrams the media sockets read in batches (recvmmsg).",
		}, func() float64 { return float64(s.received().Datagrams) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_udp_receive_messages_total",
			Help: "recvmmsg messages that held the received datagrams (a UDP GRO message holds several).",
		}, func() float64 { return float64(s.received().Messages) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_udp_receive_calls_total",
			Help: "recvmmsg system calls of the media sockets that returned datagrams.",
		}, func() float64 { return float64(s.received().Calls) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_udp_send_dropped_total",
			Help: "Batched datagrams the kernel refused to send.",
		}, func() float64 { return float64(s.sent().Dropped) }),
	}
	cs = append(append(cs, s.wsMetrics()...), s.iceMetrics()...)
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

// LoopbackOnly makes a SettingEngine use loopback only, for load tests and
// browser tests on one machine: loopback candidates included (Pion leaves
// them out by default), every other address filtered out, mDNS off.
func LoopbackOnly(se *webrtc.SettingEngine) {
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
}
