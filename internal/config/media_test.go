package config

import (
	"strings"
	"testing"
)

// TestMediaReachValidate: the media addresses the configuration alone shows
// to be unreachable are refused, naming the settings; the same with
// media.loopback_only (a one-machine test) or on a process without the
// media role is accepted.
func TestMediaReachValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // empty: valid
	}{
		{"default", func(*Config) {}, nil},
		{"loopback udp", func(c *Config) { c.SFU.UDPAddr = "127.0.0.1:8443" }, []string{"sfu.udp_addr", "media.loopback_only"}},
		{"localhost udp", func(c *Config) { c.SFU.UDPAddr = "localhost:8443" }, []string{"sfu.udp_addr"}},
		{"loopback udp, loopback only", func(c *Config) { c.SFU.UDPAddr = "127.0.0.1:8443"; c.Media.LoopbackOnly = true }, nil},
		{"loopback udp, no media role", func(c *Config) { c.SFU.UDPAddr = "127.0.0.1:8443"; c.Roles = []string{RoleAPI} }, nil},
		{"link-local udp", func(c *Config) { c.SFU.UDPAddr = "[fe80::1%eth0]:8443" }, []string{"sfu.udp_addr", "sfu.public_ips"}},
		{"link-local udp behind NAT", func(c *Config) {
			c.SFU.UDPAddr = "169.254.1.1:8443"
			c.SFU.PublicIPs = []string{"203.0.113.7"}
		}, nil},
		{"multicast udp", func(c *Config) { c.SFU.UDPAddr = "239.1.1.1:8443" }, []string{"sfu.udp_addr"}},
		{"loopback public ip", func(c *Config) { c.SFU.PublicIPs = []string{"::1"} }, []string{"sfu.public_ips"}},
		{"link-local public ip", func(c *Config) { c.SFU.PublicIPs = []string{"169.254.9.9"} }, []string{"sfu.public_ips"}},
		{"private public ip (a LAN)", func(c *Config) { c.SFU.PublicIPs = []string{"10.0.0.5"} }, nil},
		{"loopback ice-tcp", func(c *Config) { c.Media.ICETCPAddr = "127.0.0.1:8443" }, []string{"media.ice_tcp_addr"}},
		{"loopback relay", func(c *Config) { c.Media.TURN.Addr = "127.0.0.1:3478" }, []string{"media.turn.addr"}},
		{"relay advertising loopback", func(c *Config) {
			c.Media.TURN.Addr = "0.0.0.0:3478"
			c.Media.TURN.PublicIP = "127.0.0.1"
		}, []string{"media.turn.public_ip"}},
		{"clinic help", func(c *Config) { c.Clinic = Clinic{HelpText: "Call the front desk.", HelpPhone: "+1 (555) 010-0100"} }, nil},
		{"clinic phone with letters", func(c *Config) { c.Clinic.HelpPhone = "call us" }, []string{"clinic.help_phone"}},
		{"clinic text too long", func(c *Config) { c.Clinic.HelpText = strings.Repeat("x", 301) }, []string{"clinic.help_text"}},
		{"clinic text on two lines", func(c *Config) { c.Clinic.HelpText = "a\nb" }, []string{"clinic.help_text"}},
		{"clinic time zone", func(c *Config) { c.Clinic.TimeZone = "America/Los_Angeles" }, nil},
		{"clinic time zone unknown", func(c *Config) { c.Clinic.TimeZone = "Mars/Olympus_Mons" }, []string{"clinic.time_zone"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validDev()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want refused")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want %q named", err, w)
				}
			}
		})
	}
}
