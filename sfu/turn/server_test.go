package turn

import (
	"net"
	"strings"
	"testing"
)

func TestPublic(t *testing.T) {
	for _, c := range []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", false}, {"::1", false}, {"10.1.2.3", false}, {"172.16.0.1", false},
		{"192.168.1.1", false}, {"169.254.10.1", false}, {"fe80::1", false}, {"fd00::1", false},
		{"100.64.0.1", false}, {"0.0.0.0", false}, {"224.0.0.1", false},
		{"8.8.8.8", true}, {"2001:4860:4860::8888", true}, {"100.128.0.1", true},
	} {
		if got := Public(net.ParseIP(c.ip)); got != c.want {
			t.Errorf("Public(%s) = %v, want %v", c.ip, got, c.want)
		}
	}
}

func TestNewNeedsSecretAndRelayIP(t *testing.T) {
	if _, err := New(Params{Addr: "127.0.0.1:0", Secret: []byte("short")}); err == nil {
		t.Error("a short secret was accepted")
	}
	if _, err := New(Params{Addr: "0.0.0.0:0", Secret: make([]byte, 32)}); err == nil {
		t.Error("listening on all addresses without RelayIP was accepted")
	}
}

func TestURLsNameEveryListener(t *testing.T) {
	got := URLs("media.example", "3478", "3479", "443")
	want := []string{"turn:media.example:3478?transport=udp", "turn:media.example:3479?transport=tcp", "turns:media.example:443?transport=tcp"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("URLs = %q, want %q", got, want)
	}
	if got := URLs("media.example", "", "", "443"); len(got) != 1 || got[0] != want[2] {
		t.Fatalf("TLS only: URLs = %q, want only %q", got, want[2])
	}
}

func TestTLSNeedsCertificate(t *testing.T) {
	if _, err := New(Params{TLSAddr: "127.0.0.1:0", Secret: make([]byte, 32)}); err == nil {
		t.Fatal("TURN over TLS without a certificate was accepted")
	}
	if _, err := New(Params{Secret: make([]byte, 32)}); err == nil {
		t.Fatal("a relay with no listen address was accepted")
	}
}
