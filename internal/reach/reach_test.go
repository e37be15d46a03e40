package reach

import (
	"net/netip"
	"strings"
	"testing"
)

func cand(proto, addr string) Candidate {
	return Candidate{Protocol: proto, Address: addr, Port: 8443, Type: "host"}
}

func TestScopeOf(t *testing.T) {
	for s, want := range map[string]Scope{
		"127.0.0.1": Loopback, "::1": Loopback, "169.254.1.2": LinkLocal, "fe80::1": LinkLocal,
		"10.0.0.5": Private, "192.168.1.2": Private, "172.16.0.1": Private, "fd00::2": Private, "100.64.1.1": Private,
		"203.0.113.7": Public, "2001:db8::1": Public, "0.0.0.0": Unknown, "224.0.0.1": Unknown, "::ffff:10.0.0.1": Private,
	} {
		if got := ScopeOf(netip.MustParseAddr(s)); got != want {
			t.Errorf("ScopeOf(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	ip := func(s string) []netip.Addr { return []netip.Addr{netip.MustParseAddr(s)} }
	tests := []struct {
		name     string
		in       Input
		want     Severity // the most severe finding; -1: none above Advice
		settings string   // a setting the worst finding names
	}{
		{"no candidates", Input{}, Fatal, "sfu.udp_addr"},
		{"loopback only by intent", Input{LoopbackOnly: true, Candidates: []Candidate{cand("udp", "127.0.0.1")},
			NodeHost: "127.0.0.1", NodeHostAddrs: ip("127.0.0.1"), NodeHostResolveOK: true}, -1, ""},
		{"only loopback and link-local", Input{Candidates: []Candidate{cand("udp", "127.0.0.1"), cand("udp", "fe80::1")}}, Fatal, "sfu.public_ips"},
		{"public URL by IP, private media", Input{Candidates: []Candidate{cand("udp", "10.0.0.5")},
			NodeHost: "203.0.113.7", NodeHostAddrs: ip("203.0.113.7"), NodeHostResolveOK: true}, Fatal, "sfu.public_ips"},
		{"public URL by name, private media", Input{Candidates: []Candidate{cand("udp", "10.0.0.5")},
			NodeHost: "clinic.example", NodeHostAddrs: ip("203.0.113.7"), NodeHostResolveOK: true}, Warning, "sfu.public_ips"},
		{"public URL, public_ips set", Input{PublicIPs: []string{"203.0.113.7"}, Candidates: []Candidate{cand("udp", "203.0.113.7")},
			NodeHost: "203.0.113.7", NodeHostAddrs: ip("203.0.113.7"), NodeHostResolveOK: true, ICETCPAddr: ":8443"}, -1, ""},
		{"LAN clinic", Input{Candidates: []Candidate{cand("udp", "192.168.1.10")}, ICETCPAddr: ":8443",
			NodeHost: "192.168.1.10", NodeHostAddrs: ip("192.168.1.10"), NodeHostResolveOK: true}, -1, ""},
		{"name not resolved", Input{Candidates: []Candidate{cand("udp", "10.0.0.5")}, ICETCPAddr: ":8443", NodeHost: "clinic.example"}, -1, ""},
		{"public relay rescues private media", Input{Candidates: []Candidate{cand("udp", "10.0.0.5")}, TURNAddr: "0.0.0.0:3478",
			TURNRelayIP: "203.0.113.7", TURNPrivatePeers: true, NodeHost: "203.0.113.7", NodeHostAddrs: ip("203.0.113.7"), NodeHostResolveOK: true}, -1, ""},
		{"relay on loopback", Input{Candidates: []Candidate{cand("udp", "192.0.2.2")}, TURNAddr: "127.0.0.1:3478", TURNRelayIP: "127.0.0.1",
			TURNPrivatePeers: true}, Fatal, "media.turn.public_ip"},
		{"relay refuses the private node", Input{Candidates: []Candidate{cand("udp", "10.0.0.5")}, TURNAddr: "0.0.0.0:3478",
			TURNRelayIP: "203.0.113.7"}, Warning, "media.turn.allow_private_peers"},
		{"no UDP fallback", Input{Candidates: []Candidate{cand("udp", "192.168.1.10")}}, Advice, "media.ice_tcp_addr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := Check(tc.in)
			worst := Severity(-1)
			if len(fs) > 0 {
				worst = fs[0].Severity
			}
			if tc.want == -1 {
				if worst > Advice {
					t.Fatalf("findings %v, want none above advice", fs)
				}
				return
			}
			if worst != tc.want {
				t.Fatalf("worst finding %v (%v), want %v", worst, fs, tc.want)
			}
			if !strings.Contains(strings.Join(fs[0].Settings, " ")+" "+fs[0].Fix, tc.settings) {
				t.Fatalf("finding %+v does not name %s", fs[0], tc.settings)
			}
		})
	}
}
