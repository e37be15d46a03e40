package app_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/testenv"
)

// natted makes Pion advertise addrs (one per address family) instead of
// the host's addresses, as on a host whose interface addresses are those:
// what ICE gathers is what the checks see, whatever the test machine's own
// interfaces are. (With the node's UDP mux Pion applies no IP filter.)
func natted(addrs ...string) func(*webrtc.SettingEngine) {
	return func(se *webrtc.SettingEngine) {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		rules := make([]webrtc.ICEAddressRewriteRule, 0, len(addrs))
		for _, a := range addrs {
			rules = append(rules, webrtc.ICEAddressRewriteRule{External: []string{a}, AsCandidateType: webrtc.ICECandidateTypeHost})
		}
		_ = se.SetICEAddressRewriteRules(rules...)
	}
}

// onlyLoopback is a host whose only address is loopback, with Pion told to
// include loopback (its default leaves loopback out: no candidate at all).
func onlyLoopback(se *webrtc.SettingEngine) {
	natted("127.0.0.1", "::1")(se)
	se.SetIncludeLoopbackCandidate(true)
}

// TestUnreachableMediaAddressRefused: every combination of media settings
// that no browser on another machine could reach is refused when the
// process starts, with a message naming the settings to change; reachable
// ones start. Static combinations fail in config validation; those that
// depend on the host's addresses fail when the media node has gathered its
// candidates (the host is simulated with Pion's settings, as ICE sees it).
func TestUnreachableMediaAddressRefused(t *testing.T) {
	dsn := testenv.Postgres(t)
	for _, tc := range unreachableMedia() {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			err := startMediaNode(t, dsn, tc.mutate, tc.host)
			if err == nil {
				t.Fatal("started, want refused")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
		})
	}
	for _, tc := range reachableMedia() {
		t.Run("accepted/"+tc.name, func(t *testing.T) {
			if err := startMediaNode(t, dsn, tc.mutate, tc.host); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	t.Run("accepted/0.0.0.0 on this host", func(t *testing.T) {
		if !hasRoutableAddress() {
			t.Skip("this machine has no routable interface address")
		}
		if err := startMediaNode(t, dsn, func(*config.Config) {}, nil); err != nil {
			t.Fatalf("refused: %v", err)
		}
	})
}

// mediaCase is a combination of media settings (mutate, on a development
// API and media node) on a host (host simulates its addresses; nil: this
// machine's).
type mediaCase struct {
	name   string
	mutate func(*config.Config)
	host   func(*webrtc.SettingEngine)
	want   []string // refused: every one must be named in the error
}

// unreachableMedia are the combinations no browser on another machine
// could reach.
func unreachableMedia() []mediaCase {
	return []mediaCase{
		{"loopback udp_addr without loopback_only", func(c *config.Config) { c.SFU.UDPAddr = "127.0.0.1:0" }, nil,
			[]string{"sfu.udp_addr", "media.loopback_only"}},
		{"localhost udp_addr", func(c *config.Config) { c.SFU.UDPAddr = "localhost:0" }, nil,
			[]string{"sfu.udp_addr", "media.loopback_only"}},
		{"IPv6 loopback udp_addr", func(c *config.Config) { c.SFU.UDPAddr = "[::1]:0" }, nil,
			[]string{"sfu.udp_addr", "media.loopback_only"}},
		{"link-local udp_addr", func(c *config.Config) { c.SFU.UDPAddr = "169.254.7.7:0" }, nil,
			[]string{"sfu.udp_addr", "sfu.public_ips"}},
		{"loopback public_ips", func(c *config.Config) { c.SFU.PublicIPs = []string{"127.0.0.1"} }, nil,
			[]string{"sfu.public_ips"}},
		{"unspecified public_ips", func(c *config.Config) { c.SFU.PublicIPs = []string{"0.0.0.0"} }, nil,
			[]string{"sfu.public_ips"}},
		{"loopback ice_tcp_addr", func(c *config.Config) { c.Media.ICETCPAddr = "127.0.0.1:0" }, nil,
			[]string{"media.ice_tcp_addr", "media.loopback_only"}},
		{"loopback relay", func(c *config.Config) { c.Media.TURN.Addr = "127.0.0.1:0" }, nil,
			[]string{"media.turn.addr"}},
		{"0.0.0.0 on a host with only loopback", func(*config.Config) {}, onlyLoopback,
			[]string{"sfu.public_ips", "media.loopback_only", "loopback"}},
		{"public URL, private media (cloud VM without sfu.public_ips)", func(c *config.Config) {
			c.PublicURL = "https://203.0.113.10"
		}, natted("10.1.2.3", "fd00::3"), []string{"sfu.public_ips", "203.0.113.10"}},
	}
}

// reachableMedia are combinations that start.
func reachableMedia() []mediaCase {
	return []mediaCase{
		{"loopback with loopback_only (tests on one machine)", func(c *config.Config) {
			c.SFU.UDPAddr = "127.0.0.1:0"
			c.Media.LoopbackOnly = true
			c.Media.TURN.Addr = "127.0.0.1:0"
		}, nil, nil},
		{"public URL with sfu.public_ips", func(c *config.Config) {
			c.PublicURL = "https://203.0.113.10"
			c.SFU.PublicIPs = []string{"203.0.113.10"}
		}, nil, nil},
		{"private URL, private media (clinic LAN)", func(c *config.Config) { c.PublicURL = "https://10.1.2.3:8443" }, natted("10.1.2.3", "fd00::3"), nil},
		{"public URL, public host address", func(c *config.Config) { c.PublicURL = "https://203.0.113.10" }, natted("203.0.113.10", "fd00::3"), nil},
	}
}

// startMediaNode starts a development API and media node on the database
// dsn with mutate applied and the host simulated by host, stops it again,
// and returns the error that refused it.
func startMediaNode(t *testing.T, dsn string, mutate func(*config.Config), host func(*webrtc.SettingEngine)) error {
	t.Helper()
	cfg := config.Default()
	cfg.Environment = config.Development
	cfg.Roles = []string{config.RoleAPI, config.RoleMedia}
	cfg.Database.URL = dsn
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = "https://127.0.0.1:8443"
	cfg.SFU.UDPAddr = "0.0.0.0:0"
	mutate(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.DiscardHandler), ConfigureWebRTC: host})
	if err == nil {
		_ = a.Shutdown(ctx)
	}
	return err
}

func hasRoutableAddress() bool {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return true
		}
	}
	return false
}
