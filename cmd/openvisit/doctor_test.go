package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestDoctor: `openvisit doctor` says what the media node advertises and,
// for an address no browser elsewhere can reach, names the setting and the
// fix and exits non-zero.
func TestDoctor(t *testing.T) {
	t.Setenv("OPENVISIT_ENVIRONMENT", "development")
	t.Setenv("OPENVISIT_DATABASE_URL", "postgres://db.invalid/openvisit")
	t.Setenv("OPENVISIT_PUBLIC_URL", "https://127.0.0.1:8443")
	t.Setenv("OPENVISIT_ROLES", "api,media")

	t.Run("loopback without loopback_only", func(t *testing.T) {
		t.Setenv("OPENVISIT_SFU_UDP_ADDR", "127.0.0.1:8443")
		var out bytes.Buffer
		err := run([]string{"doctor"}, &out, &bytes.Buffer{})
		if !errors.Is(err, errDoctorFound) {
			t.Fatalf("doctor = %v, want problems found\n%s", err, out.String())
		}
		for _, want := range []string{"sfu.udp_addr", "media.loopback_only", "NO.", "fix:"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("loopback by intent", func(t *testing.T) {
		t.Setenv("OPENVISIT_SFU_UDP_ADDR", "127.0.0.1:8443")
		t.Setenv("OPENVISIT_MEDIA_LOOPBACK_ONLY", "true")
		t.Setenv("OPENVISIT_MEDIA_ICE_TCP_ADDR", "127.0.0.1:8443")
		var out bytes.Buffer
		if err := run([]string{"doctor"}, &out, &bytes.Buffer{}); err != nil {
			t.Fatalf("doctor = %v\n%s", err, out.String())
		}
		// The configured ports are reported, not the doctor's own.
		for _, want := range []string{"udp 127.0.0.1:8443 (host, loopback)", "tcp 127.0.0.1:8443", "loopback only"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("no media role", func(t *testing.T) {
		t.Setenv("OPENVISIT_ROLES", "api")
		var out bytes.Buffer
		if err := run([]string{"doctor"}, &out, &bytes.Buffer{}); err != nil || !strings.Contains(out.String(), "no media role") {
			t.Fatalf("doctor = %v\n%s", err, out.String())
		}
	})
}
