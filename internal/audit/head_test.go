package audit

import (
	"bytes"
	"testing"
	"time"
)

// A head anchor round-trips through its bucket form, and any change to a
// signed field breaks the signature.
func TestHeadAnchorSigned(t *testing.T) {
	key := newKey(t)
	hashes := [][]byte{bytes.Repeat([]byte{1}, HashSize), bytes.Repeat([]byte{2}, HashSize), bytes.Repeat([]byte{3}, HashSize)}
	h := signHead(key, 7, hashes, time.Now())
	if h.Seq != 9 || !bytes.Equal(h.HeadHash, hashes[2]) || !h.Valid(pubOf(key)) {
		t.Fatalf("signed head: seq %d valid %v", h.Seq, h.Valid(pubOf(key)))
	}
	body, err := h.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseHead(body)
	if err != nil || !got.Valid(pubOf(key)) || headKey(got) != headKey(h) {
		t.Fatalf("parsed: %+v, %v", got, err)
	}
	if x, ok := got.HashAt(8); !ok || !bytes.Equal(x, hashes[1]) {
		t.Errorf("HashAt(8) = %x, %v", x, ok)
	}
	for name, mutate := range map[string]func(*HeadAnchor){
		"middle hash": func(h *HeadAnchor) { h.Hashes[1] = bytes.Repeat([]byte{9}, HashSize) },
		"from_seq":    func(h *HeadAnchor) { h.FromSeq++; h.Seq++ },
		"signed_at":   func(h *HeadAnchor) { h.SignedAt = h.SignedAt.Add(time.Microsecond) },
		"other key":   func(h *HeadAnchor) { *h = signHead(newKey(t), h.FromSeq, h.Hashes, h.SignedAt) },
	} {
		c, _ := parseHead(body)
		mutate(&c)
		if c.Valid(pubOf(key)) {
			t.Errorf("%s changed, signature still valid", name)
		}
	}
	if headKeyBefore(9) >= headKey(h) || headKeyBefore(10) <= headKey(h) {
		t.Errorf("key order: %s, %s, %s", headKeyBefore(9), headKey(h), headKeyBefore(10))
	}
}

// FuzzParseHead: bucket objects are read back over the network; no input
// may crash the parser, and what parses and validates re-encodes the same.
func FuzzParseHead(f *testing.F) {
	key := newKey(f)
	h := signHead(key, 1, [][]byte{bytes.Repeat([]byte{5}, HashSize)}, time.Unix(1700000000, 0))
	body, _ := h.marshal()
	f.Add(body)
	f.Add([]byte(`{"format":"openvisit.audit.head.v1","seq":1,"from_seq":1,"hashes":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseHead(b)
		if err != nil {
			return
		}
		if got.Valid(pubOf(key)) {
			again, err := got.marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parseHead(again); err != nil {
				t.Fatalf("re-encoded anchor does not parse: %v", err)
			}
		}
		_, _ = got.HashAt(got.Seq)
	})
}
