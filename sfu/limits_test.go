package sfu

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// joinedSocket joins visit on a bare socket and reads `joined`.
func joinedSocket(t *testing.T, env *testEnv, visit ids.VisitID) *websocket.Conn {
	t.Helper()
	tok, _ := env.mint(t, visit, token.RolePatient)
	c := env.dial(t)
	join(t, c, tok, visit)
	if m := readMsg(t, c); m["type"] != "joined" {
		t.Fatalf("got %v, want joined", m)
	}
	return c
}

// flood writes frame with write until the socket fails or limit frames are
// sent, and returns how many it sent.
func flood(c *websocket.Conn, limit int, write func(*websocket.Conn) error) *atomic.Int64 {
	var sent atomic.Int64
	go func() {
		for i := 0; i < limit; i++ {
			if write(c) != nil {
				return
			}
			sent.Add(1)
		}
	}()
	return &sent
}

// TestMessageFloodCutOff: a client that sends 200,000 messages as fast as it
// can is closed with rate_limited (4029) after its burst, having had at most
// burst + rate × elapsed messages processed; the node goes on serving calls.
func TestMessageFloodCutOff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(*websocket.Conn) error
	}{
		{"layer hints", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(`{"type":"layer_hint","track":"video-1","width":640,"height":360}`))
		}},
		{"pings", func(c *websocket.Conn) error {
			return c.WriteControl(websocket.PingMessage, []byte("x"), time.Now().Add(time.Second))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			visit := ids.NewVisitID()
			c := joinedSocket(t, env, visit)
			before := env.sfu.wsStats.messages.Load()
			start := time.Now()
			sent := flood(c, 200_000, tc.write)
			expectError(t, c, protocol.CodeRateLimited, 4029)
			elapsed := time.Since(start)
			processed := env.sfu.wsStats.messages.Load() - before
			// The refused frame is counted too.
			limit := uint64(msgBurst) + uint64(float64(msgRate)*elapsed.Seconds()) + 1
			t.Logf("sent %d, processed %d (limit %d) in %v", sent.Load(), processed, limit, elapsed)
			if processed > limit {
				t.Errorf("processed %d messages in %v, want at most %d", processed, elapsed, limit)
			}
			if n := env.sfu.wsStats.rateLimited.Load(); n != 1 {
				t.Errorf("rate-limited sockets = %d, want 1", n)
			}
			waitFor(t, "the flooding participant to leave", func() bool { return env.sfu.Stats().Participants == 0 })

			// Still serving: a call goes through.
			a := newClient(t, env, visit)
			defer a.leave()
			b := newClient(t, env, visit)
			defer b.leave()
			callBothWays(t, a, b)
		})
	}
}

// TestJoinBurstAllowed: a client may send its whole burst at once (join,
// offer, candidates, hints) without being closed.
func TestJoinBurstAllowed(t *testing.T) {
	env := newTestEnv(t)
	visit := ids.NewVisitID()
	c := joinedSocket(t, env, visit) // join is one, leave another
	for i := 0; i < msgBurst-2; i++ {
		writeJSON(t, c, protocol.LayerHint("video-1", i, i))
	}
	writeJSON(t, c, protocol.Leave())
	if got := expectClose(t, c); got != websocket.CloseNormalClosure {
		t.Fatalf("close %d after a full burst, want 1000", got)
	}
	if n := env.sfu.wsStats.rateLimited.Load(); n != 0 {
		t.Fatalf("rate-limited sockets = %d, want 0", n)
	}
}

// offerWith makes a Pion offer with the given transceiver kinds.
func offerWith(t *testing.T, kinds ...webrtc.RTPCodecType) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// TestOfferTooManyTracks: an offer with more media sections than
// maxOfferMLines is refused with too_many_tracks (4013); one at the cap is
// answered.
func TestOfferTooManyTracks(t *testing.T) {
	env := newTestEnv(t)
	visit := ids.NewVisitID()
	a, v := webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo

	c := joinedSocket(t, env, visit)
	writeJSON(t, c, protocol.Offer(offerWith(t, a, v, v, v, a)))
	expectError(t, c, protocol.CodeTooManyTracks, 4013)

	c = joinedSocket(t, env, visit)
	writeJSON(t, c, protocol.Offer(offerWith(t, a, v, v, v)))
	if m := readMsg(t, c); m["type"] != "answer" {
		t.Fatalf("offer at the cap: got %v, want answer", m)
	}
}

func TestCheckOfferAnswer(t *testing.T) {
	a, v := webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo
	two := offerWith(t, a, v)
	five := offerWith(t, a, v, a, v, a)
	codeOf := func(err error) protocol.Code {
		var pe *protoError
		if errors.As(err, &pe) {
			return pe.code
		}
		return ""
	}
	if err := checkOffer(two); err != nil {
		t.Errorf("two sections: %v", err)
	}
	if got := codeOf(checkOffer(five)); got != protocol.CodeTooManyTracks {
		t.Errorf("five sections: code %q, want too_many_tracks", got)
	}
	if got := codeOf(checkOffer("v=0\r\n")); got != protocol.CodeBadSDP {
		t.Errorf("garbage: code %q, want bad_sdp", got)
	}
	if err := checkAnswer(two, 2); err != nil {
		t.Errorf("answer with the offered sections: %v", err)
	}
	if got := codeOf(checkAnswer(five, 2)); got != protocol.CodeBadSDP {
		t.Errorf("answer with more sections than offered: code %q, want bad_sdp", got)
	}
	if n := mediaSections(five); n != 5 {
		t.Errorf("mediaSections = %d, want 5", n)
	}
	if n := mediaSections(strings.TrimPrefix(two, "v=0\r\n")); n != 2 {
		t.Errorf("mediaSections without the version line = %d, want 2", n)
	}
}

// TestMessageLimiterAllocs: counting a message within budget allocates
// nothing.
func TestMessageLimiterAllocs(t *testing.T) {
	skipUnderRace(t)
	var total atomic.Uint64
	l := newMsgLimiter(&total)
	l.lim.SetLimit(1e9) // never refuse: measure the accounting, not the refusal
	l.lim.SetBurst(1 << 30)
	if n := testing.AllocsPerRun(10_000, func() { _ = l.allow() }); n != 0 {
		t.Fatalf("allow allocates %.1f times per message, want 0", n)
	}
}

// FuzzCheckOffer: whatever SDP a client sends, the checks never panic, an
// accepted offer has at most maxOfferMLines sections, and every refusal
// carries bad_sdp or too_many_tracks.
func FuzzCheckOffer(f *testing.F) {
	const head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AB:CD\r\n"
	const media = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
	f.Add(head + media)
	f.Add(head + strings.Repeat(media, maxOfferMLines+1))
	f.Add(media)
	f.Add("v=0\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		err := checkOffer(raw)
		if err == nil {
			d, perr := parseSDP(raw)
			if perr != nil || len(d.MediaDescriptions) > maxOfferMLines {
				t.Fatalf("accepted an offer the checks refuse: %v", perr)
			}
			return
		}
		var pe *protoError
		if !errors.As(err, &pe) || (pe.code != protocol.CodeBadSDP && pe.code != protocol.CodeTooManyTracks) {
			t.Fatalf("error %v has no bad_sdp/too_many_tracks code", err)
		}
		_ = checkAnswer(raw, 2)
	})
}
