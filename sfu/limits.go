package sfu

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/pion/sdp/v3"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/openvisit/openvisit/sfu/protocol"
)

// Per-socket limits beyond the size limits of messages.go (PROTOCOL.md,
// "Limits").
//
// Message rate: a token bucket per socket, counting every frame the client
// sends (text, binary, ping, pong). What real clients send was measured with
// the e2e tests (the SFU logs "socket closed" with the socket's message count
// at debug level): a Chromium page sent 10–14 messages over a whole call —
// join, one offer, its trickled candidates (host UDP and TCP per interface
// address; srflx and relay ones with STUN/TURN servers: a laptop with a VPN,
// IPv6 and a relay stays under ~30), an answer per server renegotiation, a
// layer_hint per remote video per resize (debounced to 4 a second per track)
// and leave; the recorder sent 5. The burst covers several times the largest
// join; the steady rate covers a page resized continuously with four remote
// videos plus renegotiations.
const (
	msgBurst = 100
	msgRate  = rate.Limit(20) // messages per second, sustained
	// maxOfferMLines caps the media sections of the client's one offer.
	// The web client publishes one audio and one video section (a screen
	// share replaces the camera's track), the recorder offers two
	// receive-only sections; four leaves room for a separate screen track.
	// Every published section is forwarded to every other participant, so
	// an unbounded offer would multiply work across the room.
	maxOfferMLines = 4
)

var (
	errRateLimited  = errors.New("sfu: client message rate over limit")
	errTooManyLines = errors.New("sfu: offer has too many media sections")
)

// wsCounters count client messages node-wide, for the metrics.
type wsCounters struct {
	messages    atomic.Uint64 // frames received from clients
	rateLimited atomic.Uint64 // sockets closed with rate_limited
}

// noteRateLimited counts and logs (once per socket, opaque IDs only) a
// socket closed for sending too fast; p is nil before join.
func (s *SFU) noteRateLimited(p *participant) {
	s.wsStats.rateLimited.Add(1)
	log := s.log
	if p != nil {
		log = p.log
	}
	log.Warn("socket closed: client message rate over limit", "code", string(protocol.CodeRateLimited),
		"burst", msgBurst, "per_second", float64(msgRate))
}

func (s *SFU) wsMetrics() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_ws_messages_total", Help: "Frames received on media signaling sockets.",
		}, func() float64 { return float64(s.wsStats.messages.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "openvisit_sfu_ws_rate_limited_total",
			Help: "Media signaling sockets closed for sending messages faster than allowed (rate_limited).",
		}, func() float64 { return float64(s.wsStats.rateLimited.Load()) }),
	}
}

// msgLimiter is one socket's message budget. allow is called by the
// socket's reader (the read loop and gorilla's control-frame handlers, which
// run on it) for every frame; it does not allocate (TestMessageLimiterAllocs).
type msgLimiter struct {
	lim   *rate.Limiter
	n     uint64         // frames this socket sent
	total *atomic.Uint64 // node-wide count of client frames
}

func newMsgLimiter(total *atomic.Uint64) *msgLimiter {
	return &msgLimiter{lim: rate.NewLimiter(msgRate, msgBurst), total: total}
}

// allow counts one client frame and reports whether it is within budget;
// when it is not, the error ends the socket with rate_limited.
func (l *msgLimiter) allow() error {
	l.n++
	l.total.Add(1)
	if !l.lim.Allow() {
		return fail(protocol.CodeRateLimited, errRateLimited)
	}
	return nil
}

// parseSDP parses raw and refuses it without a DTLS fingerprint (at session
// level, or on every media section). DTLS-SRTP is mandatory (DESIGN.md
// decision 4).
func parseSDP(raw string) (*sdp.SessionDescription, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(raw); err != nil {
		return nil, fmt.Errorf("sfu: parse sdp: %w", err)
	}
	if _, ok := d.Attribute("fingerprint"); ok {
		return &d, nil
	}
	if len(d.MediaDescriptions) == 0 {
		return nil, errNoFingerprint
	}
	for _, m := range d.MediaDescriptions {
		if _, ok := m.Attribute("fingerprint"); !ok {
			return nil, errNoFingerprint
		}
	}
	return &d, nil
}

// checkSDP refuses an SDP that does not parse or lacks a DTLS fingerprint.
func checkSDP(raw string) error {
	_, err := parseSDP(raw)
	return err
}

// checkOffer checks the client's offer: a valid SDP (bad_sdp) with at most
// maxOfferMLines media sections (too_many_tracks).
func checkOffer(raw string) error {
	d, err := parseSDP(raw)
	if err != nil {
		return fail(protocol.CodeBadSDP, err)
	}
	if n := len(d.MediaDescriptions); n > maxOfferMLines {
		return fail(protocol.CodeTooManyTracks, fmt.Errorf("%w: %d > %d", errTooManyLines, n, maxOfferMLines))
	}
	return nil
}

// checkAnswer checks the client's answer to a server offer of offered media
// sections: a valid SDP with as many sections (RFC 3264 §6), all bad_sdp.
func checkAnswer(raw string, offered int) error {
	d, err := parseSDP(raw)
	if err != nil {
		return fail(protocol.CodeBadSDP, err)
	}
	if n := len(d.MediaDescriptions); n != offered {
		return fail(protocol.CodeBadSDP, fmt.Errorf("sfu: answer has %d media sections, the offer %d", n, offered))
	}
	return nil
}

// mediaSections counts the m= lines of an SDP this node generated.
func mediaSections(raw string) int {
	n := strings.Count(raw, "\nm=")
	if strings.HasPrefix(raw, "m=") {
		n++
	}
	return n
}
