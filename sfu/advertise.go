package sfu

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvisit/openvisit/internal/reach"
)

// Advertised gathers, with the node's own settings (UDP mux, ICE-TCP,
// public IPs, IP filters, loopback), the candidates a participant joining
// now would be given. It runs a real Pion gathering on a throwaway
// PeerConnection, so what it reports is what browsers get.
func (s *SFU) Advertised(ctx context.Context) ([]reach.Candidate, error) {
	api := webrtc.NewAPI(webrtc.WithMediaEngine(s.media), webrtc.WithSettingEngine(s.se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("sfu: advertised candidates: %w", err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return nil, fmt.Errorf("sfu: advertised candidates: %w", err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("sfu: advertised candidates: %w", err)
	}
	var mu sync.Mutex
	var out []reach.Candidate
	done := make(chan struct{})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			close(done) // gathering complete
			return
		}
		mu.Lock()
		out = append(out, reach.Candidate{Protocol: c.Protocol.String(), Address: c.Address, Port: int(c.Port), Type: c.Typ.String()})
		mu.Unlock()
	})
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("sfu: advertised candidates: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("sfu: advertised candidates: %w", ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	return out, nil
}

// iceFailureReport is how often ICE failures are summarised in the log.
const iceFailureReport = 10 * time.Minute

// iceFailures reports participants whose media connection failed: the
// first one at once with what the node advertised and the settings that
// decide it, then at most one summary per iceFailureReport, so that a
// misconfigured node says what to fix once instead of flooding the log.
type iceFailures struct {
	mu       sync.Mutex
	total    uint64
	reported time.Time
	pending  uint64 // failures since the last report
}

// noteICEFailed counts a participant whose PeerConnection failed and
// reports it as above. It runs on Pion's state-change goroutine, never on
// the media path.
func (s *SFU) noteICEFailed(p *participant) {
	f := &s.iceFail
	f.mu.Lock()
	f.total++
	f.pending++
	now := time.Now()
	first := f.reported.IsZero()
	if !first && now.Sub(f.reported) < iceFailureReport {
		f.mu.Unlock()
		return
	}
	n := f.pending
	f.pending, f.reported = 0, now
	f.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	cands, err := s.Advertised(ctx)
	cancel()
	adv := "unknown"
	if err == nil {
		adv = reach.Describe(cands)
	}
	msg := "media connections failed: no ICE candidate pair worked. Browsers must reach one of the advertised candidates; " +
		"if they are on other networks, set sfu.public_ips to the address that forwards sfu.udp_addr's port to this host, " +
		"or enable media.ice_tcp_addr or media.turn.addr. `openvisit doctor` checks the configuration."
	if first {
		p.log.Warn(msg, "advertised", adv)
		return
	}
	s.log.Warn(msg, "failures", n, "since", iceFailureReport.String(), "advertised", adv)
}

// ICEFailures returns how many participants' media connections failed.
func (s *SFU) ICEFailures() uint64 {
	s.iceFail.mu.Lock()
	defer s.iceFail.mu.Unlock()
	return s.iceFail.total
}

func (s *SFU) iceMetrics() []prometheus.Collector {
	return []prometheus.Collector{prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "openvisit_sfu_ice_failures_total",
		Help: "Participants whose media connection failed (no ICE candidate pair worked, or DTLS failed).",
	}, func() float64 { return float64(s.ICEFailures()) })}
}
