package delivery

import (
	"strconv"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"id":"e1"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := Sign(secret, now.Unix(), body)
	if err := Verify(secret, ts, sig, body, now, time.Minute); err != nil {
		t.Fatalf("a fresh signature does not verify: %v", err)
	}
	for name, tc := range map[string]struct {
		secret  []byte
		ts, sig string
		body    string
		now     time.Time
	}{
		"wrong secret":        {[]byte("other"), ts, sig, string(body), now},
		"body changed":        {secret, ts, sig, `{"id":"e2"}`, now},
		"timestamp changed":   {secret, strconv.FormatInt(now.Unix()+1, 10), sig, string(body), now},
		"too old":             {secret, ts, sig, string(body), now.Add(2 * time.Minute)},
		"from the future":     {secret, ts, sig, string(body), now.Add(-2 * time.Minute)},
		"timestamp not a num": {secret, "x", sig, string(body), now},
		"no signature":        {secret, ts, "", string(body), now},
	} {
		if err := Verify(tc.secret, tc.ts, tc.sig, []byte(tc.body), tc.now, time.Minute); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 10 * time.Second, Jitter: 0.5, Limit: 4}
	none := func() float64 { return 0 }
	all := func() float64 { return 1 }
	for _, tc := range []struct {
		attempts int
		r        func() float64
		want     time.Duration
	}{
		{1, none, time.Second}, {2, none, 2 * time.Second}, {3, none, 4 * time.Second},
		{4, none, 8 * time.Second}, {5, none, 10 * time.Second}, {50, none, 10 * time.Second},
		{3, all, 2 * time.Second},
	} {
		if got := b.Wait(tc.attempts, tc.r); got != tc.want {
			t.Errorf("Wait(%d) = %s, want %s", tc.attempts, got, tc.want)
		}
	}
	if b.Exhausted(3) || !b.Exhausted(4) {
		t.Error("Exhausted does not stop at the limit")
	}
}

// FuzzVerify: a receiver's verification of whatever arrives never panics
// and never accepts what was not signed with the secret.
func FuzzVerify(f *testing.F) {
	f.Add("1800000000", "sha256=00", []byte("{}"))
	f.Add("-1", "", []byte(nil))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		now := time.Unix(1_800_000_000, 0)
		if Verify([]byte("secret"), ts, sig, body, now, time.Hour) == nil {
			n, _ := strconv.ParseInt(ts, 10, 64)
			if sig != Sign([]byte("secret"), n, body) {
				t.Fatalf("accepted a signature that is not the secret's")
			}
		}
	})
}
