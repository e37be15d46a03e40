package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/reach"
)

// errDoctorFound makes `openvisit doctor` exit non-zero after its report.
var errDoctorFound = errors.New("doctor: problems found (above)")

// doctorCmd runs `openvisit doctor`: load the configuration, check it, and
// say what a media node with it advertises (host candidates, public IPs,
// TURN URL, ICE-TCP) and whether a browser on another machine could reach
// it, with the fix for each problem. It needs no database and does not
// disturb a running node (it opens its sockets on ephemeral ports).
func doctorCmd(args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := configFlags("doctor", stderr)
	roles := fs.String("roles", "", "comma-separated roles, as serve --roles")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *roles != "" {
		cfg.Roles = strings.Split(*roles, ",")
	}
	w := &doctorOut{w: stdout}
	w.line("openvisit doctor: node %s, roles %s", cfg.SFU.NodeID, strings.Join(cfg.Roles, ","))
	invalid := false
	if err := cfg.Validate(); err != nil {
		invalid = true
		w.line("\nThe configuration is refused (serve would not start):")
		for _, line := range strings.Split(err.Error(), "\n") {
			w.line("  - %s", line)
		}
	}
	if !cfg.Has(config.RoleMedia) {
		w.line("\nThis process runs no media role: nothing to reach.")
		return doctorResult(invalid, false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := app.Doctor(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		w.line("\nThe media node could not be tried: %v", err)
		return doctorResult(true, false)
	}
	w.report(r)
	return doctorResult(invalid, worst(r.Findings) == reach.Fatal)
}

func doctorResult(invalid, fatal bool) error {
	if invalid || fatal {
		return errDoctorFound
	}
	return nil
}

func worst(fs []reach.Finding) reach.Severity {
	w := reach.Severity(-1)
	for _, f := range fs {
		w = max(w, f.Severity)
	}
	return w
}

type doctorOut struct{ w io.Writer }

func (d *doctorOut) line(format string, a ...any) { fmt.Fprintf(d.w, format+"\n", a...) }

func (d *doctorOut) report(r app.MediaReport) {
	d.line("\nBrowsers open the media socket at %s", r.NodeURL)
	d.line("ICE candidates every participant is given:")
	if len(r.Candidates) == 0 {
		d.line("  (none)")
	}
	for _, c := range r.Candidates {
		d.line("  %s", c)
	}
	d.line("sfu.public_ips: %s", orNone(strings.Join(r.PublicIPs, ", ")))
	d.line("ICE-TCP (media.ice_tcp_addr): %s", orOff(r.ICETCP))
	d.line("TURN relay (join grants carry): %s", orOff(strings.Join(r.TURNURLs, " ")))
	if r.LoopbackOnly {
		d.line("media.loopback_only: on — only browsers on this machine can connect (development and tests).")
	}
	switch worst(r.Findings) {
	case reach.Fatal:
		d.line("\nCan a browser on another machine reach it? NO.")
	case reach.Warning:
		d.line("\nCan a browser on another machine reach it? Probably not from the internet (see below).")
	default:
		if r.LoopbackOnly {
			d.line("\nCan a browser on another machine reach it? No, by intent (loopback only).")
		} else {
			d.line("\nCan a browser on another machine reach it? Yes, if its network lets it reach a candidate above (UDP; TCP for ICE-TCP) or the relay.")
		}
	}
	for _, f := range r.Findings {
		d.line("\n[%s] %s", f.Severity, f.Problem)
		d.line("  fix: %s", f.Fix)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none (the host's own addresses are advertised)"
	}
	return s
}

func orOff(s string) string {
	if s == "" {
		return "off"
	}
	return s
}
