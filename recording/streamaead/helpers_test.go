package streamaead

import (
	"bytes"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// testKey is a fixed data key; testAD a recording ID as OpenVisit binds it.
var (
	testKey = []byte("0123456789abcdef0123456789abcdef")
	testAD  = []byte("3f1c9d2e-7b4a-4c8e-9f61-2d5e8a7b0c13")
)

const smallSeg = MinSegmentSize // 4096: many segments from little data

// seg sizes for a Params: plaintext per full segment, and in segment 0.
func ptSeg(seg int) int   { return seg - TagSize }
func firstPT(seg int) int { return seg - TagSize - HeaderSize }
func detRand(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(detRand(seed+1000), b); err != nil {
		panic(err)
	}
	return b
}

// seal encrypts pt in one Write with a deterministic salt and nonce prefix.
func seal(t testing.TB, pt []byte, key, ad []byte, p Params, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newWriter(&buf, key, ad, p, detRand(seed))
	if err != nil {
		t.Fatalf("newWriter: %v", err)
	}
	if _, err := w.Write(pt); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// openAll decrypts ct with Reader.
func openAll(ct, key, ad []byte, p Params) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(ct), key, ad, p)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// openAt decrypts all of ct with ReaderAt.
func openAt(ct, key, ad []byte, p Params) ([]byte, error) {
	ra, err := NewReaderAt(bytes.NewReader(ct), int64(len(ct)), key, ad, p)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	out := make([]byte, ra.PlaintextSize())
	n, err := ra.ReadAt(out, 0)
	if err != nil {
		return out[:n], err
	}
	return out, nil
}

// countingReaderAt counts the bytes and calls that reach the object.
type countingReaderAt struct {
	r     io.ReaderAt
	bytes atomic.Int64
	calls atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.bytes.Add(int64(n))
	c.calls.Add(1)
	return n, err
}

func (c *countingReaderAt) reset() { c.bytes.Store(0); c.calls.Store(0) }
