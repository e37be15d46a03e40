package throttle

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestBackoffSchedule(t *testing.T) {
	s := 1 * time.Second
	want := map[int]time.Duration{
		0: 0, 1: 0, 4: 0,
		5: 1 * s, 6: 2 * s, 7: 4 * s, 8: 8 * s, 9: 16 * s, 10: 32 * s,
		11: 64 * s, 12: 128 * s, 13: 256 * s, 14: 512 * s,
		15: MaxDelay, 19: MaxDelay, 100: MaxDelay, 1 << 40: MaxDelay,
	}
	for f, d := range want {
		t.Run(fmt.Sprint(f), func(t *testing.T) {
			if got := Delay(f); got != d {
				t.Fatalf("Delay(%d) = %v, want %v", f, got, d)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		s         State
		now       time.Time
		wantOK    bool
		wantRetry time.Duration
	}{
		{"clean", State{}, t0, true, 0},
		{"four failures, no wait", State{Failures: 4, LastFailure: t0}, t0, true, 0},
		{"five failures, at once", State{Failures: 5, LastFailure: t0}, t0, false, time.Second},
		{"five failures, after 1s", State{Failures: 5, LastFailure: t0}, t0.Add(time.Second), true, 0},
		{"seven failures, 1s in", State{Failures: 7, LastFailure: t0}, t0.Add(time.Second), false, 3 * time.Second},
		{"nineteen failures, capped", State{Failures: 19, LastFailure: t0}, t0.Add(time.Minute), false, 14 * time.Minute},
		{"clock stepped back", State{Failures: 6, LastFailure: t0}, t0.Add(-time.Hour), false, 2 * time.Second},
		{"locked", State{Failures: 20, LastFailure: t0, Locked: true}, t0.Add(24 * time.Hour), false, Forever},
		{"count at limit without flag", State{Failures: 20, LastFailure: t0}, t0.Add(24 * time.Hour), false, Forever},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, retry := Decide(tc.s, tc.now)
			if ok != tc.wantOK || retry != tc.wantRetry {
				t.Fatalf("Decide = %v, %v; want %v, %v", ok, retry, tc.wantOK, tc.wantRetry)
			}
		})
	}
}

func TestLockAtTwenty(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var s State
	for i := 1; i <= LockAfter; i++ {
		// A patient attacker waits out each delay: the lock still comes.
		ok, retry := Decide(s, now)
		if !ok {
			now = now.Add(retry)
			if ok, _ = Decide(s, now); !ok {
				t.Fatalf("attempt %d still refused after waiting", i)
			}
		}
		s = OnFailure(s, now)
		if s.Locked != (i >= LockAfter) {
			t.Fatalf("after %d failures Locked = %v", i, s.Locked)
		}
	}
	if ok, retry := Decide(s, now.Add(365*24*time.Hour)); ok || retry != Forever {
		t.Fatalf("locked account: Decide = %v, %v", ok, retry)
	}
	if got := OnSuccess(s); !got.Locked {
		t.Fatal("OnSuccess unlocked a locked account")
	}
	if ok, _ := Decide(Unlock(s), now); !ok {
		t.Fatal("Unlock did not clear the lock")
	}
}

func TestSuccessResets(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var s State
	for range 7 {
		s = OnFailure(s, now)
	}
	s = OnSuccess(s)
	if s != (State{}) {
		t.Fatalf("after success: %+v", s)
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	l := NewLimiter(LimiterParams{Interval: 6 * time.Second, Burst: 3, MaxKeys: 2, Now: clk.Now})

	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("burst attempt %d refused", i)
		}
	}
	ok, retry := l.Allow("a")
	if ok || retry != 6*time.Second {
		t.Fatalf("over burst: %v, %v", ok, retry)
	}
	clk.t = clk.t.Add(3 * time.Second)
	if ok, retry := l.Allow("a"); ok || retry != 3*time.Second {
		t.Fatalf("half refilled: %v, %v", ok, retry)
	}
	clk.t = clk.t.Add(3 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refilled token refused")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("other key limited")
	}

	// A third key evicts the least recently seen ("a"), keeping memory bounded.
	if ok, _ := l.Allow("c"); !ok || l.Len() != 2 {
		t.Fatalf("len %d after third key", l.Len())
	}
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("evicted key should start with a fresh bucket")
	}
	if l.Len() != 2 {
		t.Fatalf("len %d, want 2", l.Len())
	}

	// A long idle period refills to Burst, not beyond.
	clk.t = clk.t.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("after idle, attempt %d refused", i)
		}
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("bucket overfilled")
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := IPKey(netip.MustParseAddr(tc.in)); got != tc.want {
				t.Fatalf("IPKey = %s, want %s", got, tc.want)
			}
		})
	}
}
