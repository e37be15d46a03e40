package app_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/testenv"
)

// dashboardQueries returns every PromQL expression of the Grafana
// dashboard, walking the JSON (panels, rows, targets) whatever its nesting.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/grafana/openvisit.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("deploy/grafana/openvisit.json: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return exprs
}

// metricRef finds metric names in PromQL: this project's and the Go
// client's process and runtime collectors'.
var metricRef = regexp.MustCompile(`\b(?:openvisit|go|process)_[a-zA-Z0-9_]+\b`)

// TestDashboardMetricsRegistered: every metric the Grafana dashboard
// (deploy/grafana/openvisit.json) queries is registered by a process that
// runs every role, and the dashboard covers what operators were promised
// (latency and errors by route, recorder backlog and spool, the outboxes,
// audit append latency).
func TestDashboardMetricsRegistered(t *testing.T) {
	s3 := testenv.MinIO(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	bucket := "ov-dash-test-" + hex.EncodeToString(b[:])
	s := startServerWith(t, func(c *config.Config) {
		c.Roles = []string{config.RoleAPI, config.RoleMedia, config.RoleRecorder}
		c.S3 = s3.Config(bucket)
		c.Audit.AnchorBucket = bucket + "-anchors"
	})
	registered := s.App.MetricNames()
	if len(registered) == 0 {
		t.Fatal("the process registered no metrics")
	}
	queried := map[string]bool{}
	for _, e := range dashboardQueries(t) {
		for _, m := range metricRef.FindAllString(e, -1) {
			queried[m] = true
		}
	}
	if len(queried) == 0 {
		t.Fatal("the dashboard queries no metrics")
	}
	for m := range queried {
		base := m
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suffix); ok && slices.Contains(registered, b) {
				base = b
			}
		}
		if !slices.Contains(registered, base) {
			t.Errorf("the dashboard queries %s, which no role registers", m)
		}
	}
	for _, want := range []string{"openvisit_http_request_duration_seconds_bucket", "openvisit_http_requests_total",
		"openvisit_recorder_backlog_recordings", "openvisit_recorder_spool_bytes", "openvisit_webhook_outbox_depth",
		"openvisit_alert_outbox_depth", "openvisit_audit_append_seconds_bucket", "openvisit_sfu_rooms"} {
		if !queried[want] {
			t.Errorf("the dashboard has no panel over %s", want)
		}
	}
}
