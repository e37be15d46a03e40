package sfu

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/turncred"
	"github.com/openvisit/openvisit/sfu/turn"
)

// callBothWays waits until a and b each receive the other's audio and video.
func callBothWays(t *testing.T, a, b *client) {
	t.Helper()
	for _, kind := range []string{"video", "audio"} {
		waitFor(t, "a receives b's "+kind, func() bool { return a.received(b.id, kind) > 10 })
		waitFor(t, "b receives a's "+kind, func() bool { return b.received(a.id, kind) > 10 })
	}
}

// selectedCandidateType returns the type of c's selected local candidate.
func selectedCandidateType(c *client) string {
	for _, s := range c.pc.GetStats() {
		if p, ok := s.(webrtc.ICECandidatePairStats); ok && p.Nominated && p.State == webrtc.StatsICECandidatePairStateSucceeded {
			if l, ok := c.pc.GetStats()[p.LocalCandidateID].(webrtc.ICECandidateStats); ok {
				return l.CandidateType.String()
			}
		}
	}
	return ""
}

// TestTURNRelayPion: a participant that may only use relayed candidates
// (iceTransportPolicy relay) completes a call through the embedded TURN
// server with time-limited credentials, reaching the relay over UDP or,
// as on a network that blocks UDP, over TCP.
func TestTURNRelayPion(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			env := newTestEnv(t)
			secret := make([]byte, 32)
			_, _ = rand.Read(secret)
			p := turn.Params{Secret: secret, AllowPrivatePeers: true /* the SFU is on loopback */, Logger: testLogger(t)}
			if transport == "udp" {
				p.Addr = "127.0.0.1:0"
			} else {
				p.TCPAddr = "127.0.0.1:0"
			}
			relay, err := turn.New(p)
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			urls := relay.URLs("127.0.0.1")
			if len(urls) != 1 || !strings.HasSuffix(urls[0], "?transport="+transport) {
				t.Fatalf("relay URLs %q, want one over %s", urls, transport)
			}
			visit := ids.NewVisitID()
			user, pass := turncred.Credentials(secret, "patient-1", time.Now().Add(time.Hour))
			cfg := webrtc.Configuration{
				ICEServers:         []webrtc.ICEServer{{URLs: urls, Username: user, Credential: pass}},
				ICETransportPolicy: webrtc.ICETransportPolicyRelay,
			}
			a := newClientWith(t, env, visit, cfg, nil)
			defer a.leave()
			b := newClient(t, env, visit)
			defer b.leave()
			callBothWays(t, a, b)
			if typ := selectedCandidateType(a); typ != "relay" {
				t.Errorf("the relay-only client's selected candidate is %q, want relay", typ)
			}
		})
	}
}

// TestTURNRefusesPrivatePeers: without AllowPrivatePeers, the relay will
// not forward to loopback (here: the SFU), so a relay-only client cannot
// connect; and expired credentials are refused.
func TestTURNRefusesPrivatePeers(t *testing.T) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	relay, err := turn.New(turn.Params{Addr: "127.0.0.1:0", Secret: secret, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	env := newTestEnv(t)
	user, pass := turncred.Credentials(secret, "patient-1", time.Now().Add(time.Hour))
	cfg := webrtc.Configuration{
		ICEServers:         []webrtc.ICEServer{{URLs: []string{relay.URLs("127.0.0.1")[0]}, Username: user, Credential: pass}},
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	}
	a := newClientWith(t, env, ids.NewVisitID(), cfg, nil)
	defer a.leave()
	waitFor(t, "a refused permission", func() bool { return relay.Refused() > 0 })
	if st := a.pc.ICEConnectionState(); st == webrtc.ICEConnectionStateConnected {
		t.Fatalf("ICE state %s: the relay forwarded to loopback", st)
	}
}

// TestICETCP: a client restricted to TCP candidates completes a call over
// the SFU's ICE-TCP port.
func TestICETCP(t *testing.T) {
	env := newTestEnv(t, func(p *Params) {
		p.TCPAddr = "127.0.0.1:0"
		p.ConfigureWebRTC = func(se *webrtc.SettingEngine) {
			loopbackOnly(se)
			se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
		}
	})
	if env.sfu.TCPAddr() == nil {
		t.Fatal("no ICE-TCP listener")
	}
	visit := ids.NewVisitID()
	a := newClientWith(t, env, visit, webrtc.Configuration{}, func(se *webrtc.SettingEngine) {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	})
	defer a.leave()
	b := newClient(t, env, visit)
	defer b.leave()
	callBothWays(t, a, b)
}
