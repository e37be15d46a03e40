package loadtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu"
)

func loopback(se *webrtc.SettingEngine) {
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
}

// TestLoadtestSmoke runs a few visits for a few seconds against an
// in-process media node on loopback: every visit gets media both ways and
// nothing is lost.
func TestLoadtestSmoke(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const node = ids.NodeID("loadtest")
	v, err := token.NewVerifier(pub, node, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := token.NewMinter(priv, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sfu.New(sfu.Params{
		Node: node, Verifier: v, Burner: token.NewMemoryBurner(1000, nil),
		UDPAddr: "127.0.0.1:0", ConfigureWebRTC: loopback,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer func() { _ = s.Close(); srv.Close() }()

	rep, err := Run(t.Context(), Params{
		WSURL:    "ws" + strings.TrimPrefix(srv.URL, "http"),
		NewVisit: func() string { return string(ids.NewVisitID()) },
		Mint: func(visit string) (string, error) {
			tok, _, err := m.Mint(token.Grant{Visit: ids.VisitID(visit), Participant: ids.NewParticipantID(),
				Role: token.RolePatient, Node: node})
			return tok, err
		},
		Visits:          3,
		Warmup:          3 * time.Second,
		Duration:        3 * time.Second,
		ConfigureWebRTC: loopback,
		OnSample:        func(s Sample) { t.Logf("%+v", s) },
	})
	if err != nil {
		t.Fatalf("run: %v (report %+v)", err, rep)
	}
	t.Logf("report: sent %d received %d lost %d p50 %.2f ms p99 %.2f ms jitter %.2f ms, %.0f pps",
		rep.SentPackets, rep.ReceivedPackets, rep.LostPackets, rep.LatencyP50MS, rep.LatencyP99MS, rep.JitterMS, rep.ForwardedPPS)
	if rep.VisitsUp != 3 {
		t.Errorf("%d of 3 visits have media both ways", rep.VisitsUp)
	}
	if rep.ReceivedPackets == 0 || rep.LostPackets != 0 {
		t.Errorf("received %d packets, lost %d: want some, and none lost", rep.ReceivedPackets, rep.LostPackets)
	}
	if rep.LatencyP50MS == 0 {
		t.Error("no latency samples: the send timestamp extension did not make it through the SFU")
	}
	if st := s.Stats(); st.ForwardedPackets == 0 {
		t.Errorf("the SFU forwarded nothing: %+v", st)
	}
}
