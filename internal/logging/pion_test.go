package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func testFactory(now func() time.Time) (*bytes.Buffer, factory) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &buf, factory{l: l, th: newThrottle(time.Minute, 4, now)}
}

// TestPionWarningsThrottled: a warning Pion repeats (every 200 ms per
// connection, from many connections) is logged once a minute with the
// number of repeats held back, not once per repeat.
func TestPionWarningsThrottled(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	buf, f := testFactory(func() time.Time { return clock })
	for conn := 0; conn < 10; conn++ {
		l := f.NewLogger("ice") // one per connection, as Pion makes them
		for i := 0; i < 100; i++ {
			l.Warn("Failed to ping without candidate pairs. Connection is not possible yet.")
		}
	}
	if n := strings.Count(buf.String(), "Failed to ping"); n != 1 {
		t.Fatalf("logged %d times in one minute, want once:\n%s", n, buf.String())
	}
	clock = clock.Add(time.Minute)
	f.NewLogger("ice").Warn("Failed to ping without candidate pairs. Connection is not possible yet.")
	if !strings.Contains(buf.String(), "repeats_held_back=999") {
		t.Fatalf("the summary does not count the 999 repeats:\n%s", buf.String())
	}
	// Another message, and the same one with other numbers in it, are keyed
	// apart from the first and together with each other.
	f.NewLogger("ice").Warnf("discard message from (%s), unknown TransactionID 0x%x", "203.0.113.4:5000", 0xabc123)
	f.NewLogger("ice").Warnf("discard message from (%s), unknown TransactionID 0x%x", "198.51.100.7:6000", 0x77f)
	if n := strings.Count(buf.String(), "discard message"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, buf.String())
	}
}

// TestPionWarningsRedacted: addresses in Pion's warnings (a participant's
// IP identifies them) never reach the log.
func TestPionWarningsRedacted(t *testing.T) {
	buf, f := testFactory(time.Now)
	l := f.NewLogger("ice")
	l.Warnf("Failed to send packet to %s", "203.0.113.4:5000")
	l.Errorf("Failed to handle decode ICE from %s to %s", "[2001:db8::7]:5000", "fe80::1%eth0")
	l.Warnf("Failed to discover mDNS candidate %s", "1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.local")
	l.Warn("plain message without addresses")
	out := buf.String()
	for _, leak := range []string{"203.0.113.4", "2001:db8", "fe80", "1f0e2d3c", ":5000"} {
		if strings.Contains(out, leak) {
			t.Errorf("log contains %q:\n%s", leak, out)
		}
	}
	if strings.Count(out, "<addr>") != 4 || !strings.Contains(out, "plain message without addresses") {
		t.Errorf("unexpected redaction:\n%s", out)
	}
}

// TestThrottleBounded: however many distinct messages come, the throttle
// keeps at most its bound of keys; new ones then share one budget.
func TestThrottleBounded(t *testing.T) {
	clock := time.Unix(0, 0)
	th := newThrottle(time.Minute, 4, func() time.Time { return clock })
	logged := 0
	for i := 0; i < 1000; i++ {
		if ok, _ := th.allow(strings.Repeat("k", i)); ok {
			logged++
		}
	}
	if len(th.seen) > 4 || logged != 4 {
		t.Fatalf("%d keys kept, %d logged; want at most 4 and 4 (3 distinct + 1 overflow)", len(th.seen), logged)
	}
}
