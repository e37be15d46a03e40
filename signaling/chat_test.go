package signaling

import (
	"slices"
	"strconv"
	"testing"
)

func TestParseChatSeq(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"42", 42, true}, {"999999999999999999", 999999999999999999, true},
		{"-1", 0, false}, {"+1", 0, false}, {"1e3", 0, false}, {" 1", 0, false}, {"1234567890123456789", 0, false},
	} {
		got, ok := ParseChatSeq(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseChatSeq(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseChatSeq: the Last-Event-ID header and ?after= come from the
// network; what is accepted is a non-negative number that prints back.
func FuzzParseChatSeq(f *testing.F) {
	for _, s := range []string{"", "7", "-1", "99999999999999999999", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseChatSeq(s)
		if !ok {
			return
		}
		if n < 0 || (s != "" && strconv.FormatInt(n, 10) != trimZeros(s)) {
			t.Fatalf("ParseChatSeq(%q) = %d", s, n)
		}
	})
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

func TestTCPRelayURLs(t *testing.T) {
	got := TCPRelayURLs([]string{"turn:relay.test:3478?transport=udp", "turn:relay.test:3478?transport=tcp",
		"turns:relay.test:5349?transport=tcp", "stun:relay.test:3478", "turn:relay.test:3478"})
	want := []string{"turn:relay.test:3478?transport=tcp", "turns:relay.test:5349?transport=tcp"}
	if !slices.Equal(got, want) {
		t.Errorf("TCPRelayURLs = %v, want %v", got, want)
	}
}
