package streamaead

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	p := Params{SegmentSize: smallSeg}
	for _, size := range interopSizes(smallSeg, 200_000) {
		pt := randomBytes(size, uint64(size))
		ct := seal(t, pt, testKey, testAD, p, 1)
		if got, err := openAll(ct, testKey, testAD, p); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("size %d: Reader err=%v equal=%v", size, err, bytes.Equal(got, pt))
		}
		if got, err := openAt(ct, testKey, testAD, p); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("size %d: ReaderAt err=%v equal=%v", size, err, bytes.Equal(got, pt))
		}
	}
}

// The ciphertext must not depend on how the plaintext was cut into Writes.
func TestWriterChunkingInvariant(t *testing.T) {
	p := Params{SegmentSize: smallSeg}
	pt := randomBytes(3*smallSeg+77, 7)
	want := seal(t, pt, testKey, testAD, p, 9)
	if int64(len(want)) != CiphertextSize(int64(len(pt)), p) {
		t.Fatalf("len %d != CiphertextSize %d", len(want), CiphertextSize(int64(len(pt)), p))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	chunkers := map[string]func() int{
		"1 byte":          func() int { return 1 },
		"segment":         func() int { return ptSeg(smallSeg) },
		"random <= 3×seg": func() int { return rng.IntN(3 * smallSeg) },
	}
	for name, next := range chunkers {
		var buf bytes.Buffer
		w, err := newWriter(&buf, testKey, testAD, p, detRand(9))
		if err != nil {
			t.Fatal(err)
		}
		for rest := pt; len(rest) > 0; {
			n := min(next(), len(rest))
			if m, err := w.Write(rest[:n]); err != nil || m != n {
				t.Fatalf("%s: Write = %d, %v", name, m, err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: ciphertext differs from a single Write", name)
		}
	}
}

func TestWriterSteadyStateAllocs(t *testing.T) {
	w, err := NewWriter(io.Discard, testKey, testAD, Params{SegmentSize: smallSeg})
	if err != nil {
		t.Fatal(err)
	}
	chunk := randomBytes(1500, 3)     // crosses segment boundaries often
	big := randomBytes(3*smallSeg, 4) // takes the seal-from-p path
	if a := testing.AllocsPerRun(200, func() { w.Write(chunk) }); a != 0 {
		t.Errorf("Write(1500 B) allocates %.1f times per call", a)
	}
	if a := testing.AllocsPerRun(50, func() { w.Write(big) }); a != 0 {
		t.Errorf("Write(3 segments) allocates %.1f times per call", a)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycleAndParams(t *testing.T) {
	for _, seg := range []int{-1, 1, HeaderSize + TagSize + 1, MinSegmentSize - 1, MaxSegmentSize + 1} {
		if _, err := NewWriter(io.Discard, testKey, testAD, Params{SegmentSize: seg}); !errors.Is(err, ErrSegmentSize) {
			t.Errorf("NewWriter(seg %d) = %v, want ErrSegmentSize", seg, err)
		}
		if CiphertextSize(10, Params{SegmentSize: seg}) != -1 {
			t.Errorf("CiphertextSize(seg %d) != -1", seg)
		}
	}
	for _, k := range [][]byte{nil, testKey[:16], append(bytes.Clone(testKey), 0)} {
		if _, err := NewWriter(io.Discard, k, testAD, Params{}); !errors.Is(err, ErrKeySize) {
			t.Errorf("NewWriter(key %d bytes) = %v, want ErrKeySize", len(k), err)
		}
		if _, err := NewReader(bytes.NewReader(make([]byte, 100)), k, testAD, Params{}); !errors.Is(err, ErrKeySize) {
			t.Errorf("NewReader(key %d bytes) = %v, want ErrKeySize", len(k), err)
		}
		if _, err := NewReaderAt(bytes.NewReader(make([]byte, 100)), 100, k, testAD, Params{}); !errors.Is(err, ErrKeySize) {
			t.Errorf("NewReaderAt(key %d bytes) = %v, want ErrKeySize", len(k), err)
		}
	}
	if CiphertextSize(-1, Params{}) != -1 {
		t.Error("CiphertextSize(-1) != -1")
	}
	// 10 MiB at 1 MiB segments: the worked example in FORMAT.md.
	if got := CiphertextSize(10<<20, Params{}); got != 10<<20+40+11*16 {
		t.Errorf("CiphertextSize(10 MiB) = %d", got)
	}

	var buf bytes.Buffer
	w, err := NewWriter(&buf, testKey, testAD, Params{SegmentSize: smallSeg})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("webm"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if w.pt != nil || w.aead != nil {
		t.Error("Close kept the plaintext buffer or the cipher")
	}

	r, err := NewReader(bytes.NewReader(buf.Bytes()), testKey, testAD, Params{SegmentSize: smallSeg})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := r.Read(make([]byte, 4)); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
	ra, err := NewReaderAt(bytes.NewReader(buf.Bytes()), int64(buf.Len()), testKey, testAD, Params{SegmentSize: smallSeg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ra.ReadAt(make([]byte, 1), -1); !errors.Is(err, ErrOffset) {
		t.Errorf("ReadAt(-1) = %v, want ErrOffset", err)
	}
	ra.Close()
	if _, err := ra.ReadAt(make([]byte, 4), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadAt after Close = %v, want ErrClosed", err)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestWriterDstError(t *testing.T) {
	if _, err := NewWriter(&failWriter{}, testKey, testAD, Params{}); err == nil {
		t.Fatal("NewWriter on failing dst succeeded")
	}
	w, err := NewWriter(&failWriter{after: 1}, testKey, testAD, Params{SegmentSize: smallSeg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 3*smallSeg)); err == nil {
		t.Fatal("Write on failing dst succeeded")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("error is not sticky")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed Write returned nil")
	}
}

// TestRecordingTamperDetected: every way of damaging or swapping a stored
// recording fails decryption with a sentinel, through Reader and ReaderAt.
func TestRecordingTamperDetected(t *testing.T) {
	const S = smallSeg
	p := Params{SegmentSize: S}
	// Segments 0..3 full, segment 4 partial (1234 bytes + tag).
	pt := randomBytes(firstPT(S)+3*ptSeg(S)+1234, 42)
	ct := seal(t, pt, testKey, testAD, p, 5)
	if len(ct) != 4*S+1234+TagSize {
		t.Fatalf("unexpected layout: %d bytes", len(ct))
	}
	for _, tc := range tamperCases(S, len(ct)) {
		t.Run(tc.name, func(t *testing.T) { checkTamperFails(t, ct, p, tc) })
	}
	// The original still decrypts (the cases above mutated copies).
	if got, err := openAll(ct, testKey, testAD, p); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("original: %v", err)
	}
}

// tamperCase is one way of damaging or swapping a stored recording, and
// the sentinel its decryption must fail with. A nil key or ad means the
// right one.
type tamperCase struct {
	name   string
	mutate func([]byte) []byte
	key    []byte
	ad     []byte
	want   error
}

// tamperCases are the damages to an object of segment size S and size bytes
// whose segments 0..3 are full and segment 4 partial.
func tamperCases(S, size int) []tamperCase {
	otherKey := []byte("fedcba9876543210fedcba9876543210")
	otherAD := []byte("9a0e55b1-2c3d-4e5f-8a9b-0c1d2e3f4a5b")
	flip := func(i int, bit byte) func([]byte) []byte {
		return func(b []byte) []byte { b[i] ^= bit; return b }
	}
	swap := func(i, j int) func([]byte) []byte {
		return func(b []byte) []byte {
			a := bytes.Clone(b[i*S : (i+1)*S])
			copy(b[i*S:], b[j*S:(j+1)*S])
			copy(b[j*S:], a)
			return b
		}
	}
	cut := func(n int) func([]byte) []byte { return func(b []byte) []byte { return b[:n] } }
	same := func(b []byte) []byte { return b }
	return []tamperCase{
		{"header length byte", flip(0, 0x01), nil, nil, ErrHeader},
		{"header salt", flip(1+7, 0x10), nil, nil, ErrAuthentication},
		{"header nonce prefix", flip(HeaderSize-1, 0x80), nil, nil, ErrAuthentication},
		{"first segment body", flip(HeaderSize+100, 0x01), nil, nil, ErrAuthentication},
		{"middle segment body", flip(2*S+10, 0x80), nil, nil, ErrAuthentication},
		{"middle segment tag", flip(3*S-1, 0x01), nil, nil, ErrAuthentication},
		{"final segment body", flip(4*S+3, 0x04), nil, nil, ErrAuthentication},
		{"final segment tag", flip(size-1, 0x01), nil, nil, ErrAuthentication},
		{"drop final segment", cut(4 * S), nil, nil, ErrTruncated},
		{"drop two final segments", cut(3 * S), nil, nil, ErrTruncated},
		{"cut mid-segment", cut(2*S + 1000), nil, nil, ErrAuthentication},
		{"cut inside final tag", cut(4*S + 10), nil, nil, ErrTruncated},
		{"cut inside header", cut(20), nil, nil, ErrTruncated},
		{"empty object", cut(0), nil, nil, ErrTruncated},
		{"swap segments 1 and 2", swap(1, 2), nil, nil, ErrAuthentication},
		{"swap segments 2 and 3", swap(2, 3), nil, nil, ErrAuthentication},
		{"appended byte", func(b []byte) []byte { return append(b, 0) }, nil, nil, ErrAuthentication},
		{"appended segment", func(b []byte) []byte { return append(b, b[S:2*S]...) }, nil, nil, ErrAuthentication},
		{"other recording ID, same key", same, nil, otherAD, ErrAuthentication},
		{"other recording (key and ID)", same, otherKey, otherAD, ErrAuthentication},
		{"wrong key", same, otherKey, nil, ErrAuthentication},
		{"empty associated data", same, nil, []byte{}, ErrAuthentication},
	}
}

// checkTamperFails decrypts a damaged copy of ct through Reader and
// ReaderAt: each fails with the case's sentinel, which matches
// ErrAuthentication, and an error message without the key.
func checkTamperFails(t *testing.T, ct []byte, p Params, tc tamperCase) {
	t.Helper()
	key, ad := testKey, testAD
	if tc.key != nil {
		key = tc.key
	}
	if tc.ad != nil {
		ad = tc.ad
	}
	for reader, open := range map[string]func(ct, key, ad []byte, p Params) ([]byte, error){
		"Reader":   openAll,
		"ReaderAt": openAt,
	} {
		bad := tc.mutate(bytes.Clone(ct))
		_, err := open(bad, key, ad, p)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", reader, err, tc.want)
			continue
		}
		if !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: %v does not match ErrAuthentication", reader, err)
		}
		if msg := err.Error(); strings.Contains(msg, hex.EncodeToString(key)) || strings.Contains(msg, string(key)) {
			t.Errorf("%s: error message contains the key", reader)
		}
	}
}

// A damaged first segment, wrong key or wrong recording ID fails in
// NewReader, before the caller has sent any response.
func TestNewReaderFailsEarly(t *testing.T) {
	p := Params{SegmentSize: smallSeg}
	ct := seal(t, randomBytes(10*smallSeg, 1), testKey, testAD, p, 1)
	if _, err := NewReader(bytes.NewReader(ct), testKey, []byte("other"), p); !errors.Is(err, ErrAuthentication) {
		t.Errorf("NewReader with wrong AD = %v", err)
	}
	// Truncation to a segment boundary is seen by NewReaderAt at once.
	if _, err := NewReaderAt(bytes.NewReader(ct), 5*smallSeg, testKey, testAD, p); !errors.Is(err, ErrTruncated) {
		t.Errorf("NewReaderAt on truncated object = %v", err)
	}
}

func TestReaderAtRanges(t *testing.T) {
	const S = smallSeg
	p := Params{SegmentSize: S}
	pt := randomBytes(firstPT(S)+5*ptSeg(S)+321, 11)
	ct := seal(t, pt, testKey, testAD, p, 12)
	ra, err := NewReaderAt(bytes.NewReader(ct), int64(len(ct)), testKey, testAD, p)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	size := int64(len(pt))
	if ra.PlaintextSize() != size {
		t.Fatalf("PlaintextSize = %d, want %d", ra.PlaintextSize(), size)
	}
	p0, ps := int64(firstPT(S)), int64(ptSeg(S))

	check := func(t *testing.T, off, n int64) {
		t.Helper()
		buf := make([]byte, n)
		got, err := ra.ReadAt(buf, off)
		want := max(0, min(n, size-off))
		if int64(got) != want {
			t.Fatalf("ReadAt(%d, %d) = %d bytes, want %d (err %v)", n, off, got, want, err)
		}
		switch {
		case want < n && err != io.EOF:
			t.Fatalf("ReadAt(%d, %d) short read err = %v, want io.EOF", n, off, err)
		case want == n && err != nil:
			t.Fatalf("ReadAt(%d, %d) err = %v", n, off, err)
		}
		if want > 0 && !bytes.Equal(buf[:got], pt[off:off+want]) {
			t.Fatalf("ReadAt(%d, %d) returned the wrong bytes", n, off)
		}
	}
	for _, tc := range []struct {
		name   string
		off, n int64
	}{
		{"empty at 0", 0, 0},
		{"first byte", 0, 1},
		{"all of segment 0", 0, p0},
		{"across 0|1", p0 - 1, 2},
		{"all of segment 1", p0, ps},
		{"across two boundaries", p0 + ps - 5, ps + 10},
		{"whole object", 0, size},
		{"last byte", size - 1, 1},
		{"past EOF", size - 10, 20},
		{"at EOF", size, 1},
		{"beyond EOF", size + 100, 1},
		{"empty at EOF", size, 0},
		{"last full segment into final", p0 + 4*ps - 3, 400},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.off, tc.n) })
	}
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for range 500 {
			off := rng.Int64N(size + 10)
			check(t, off, rng.Int64N(3*ps))
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 9))
				for range 100 {
					off, n := rng.Int64N(size), rng.Int64N(2*ps)
					buf := make([]byte, n)
					got, _ := ra.ReadAt(buf, off)
					if !bytes.Equal(buf[:got], pt[off:off+int64(got)]) {
						t.Errorf("concurrent ReadAt(%d, %d) returned the wrong bytes", n, off)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

// ReaderAt reads only the segments a range touches.
func TestReaderAtReadsOnlyNeededSegments(t *testing.T) {
	const S = smallSeg
	p := Params{SegmentSize: S}
	pt := randomBytes(firstPT(S)+9*ptSeg(S)+500, 21) // 11 segments
	ct := seal(t, pt, testKey, testAD, p, 22)
	src := &countingReaderAt{r: bytes.NewReader(ct)}
	ra, err := NewReaderAt(src, int64(len(ct)), testKey, testAD, p)
	if err != nil {
		t.Fatal(err)
	}
	// Opening reads the header and the final segment only.
	if got, want := src.bytes.Load(), int64(HeaderSize+500+TagSize); got != want {
		t.Errorf("NewReaderAt read %d bytes, want %d", got, want)
	}
	p0, ps := int64(firstPT(S)), int64(ptSeg(S))
	for _, tc := range []struct {
		name     string
		off, n   int64
		segments int64 // full segments read
	}{
		{"inside segment 3", p0 + 2*ps + 10, 100, 1},
		{"same segment again (cached)", p0 + 2*ps + 500, 100, 0},
		{"across 5|6", p0 + 5*ps - 50, 100, 2},
		{"segments 7..9", p0 + 6*ps, 3 * ps, 3},
	} {
		src.reset()
		if _, err := ra.ReadAt(make([]byte, tc.n), tc.off); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got, want := src.bytes.Load(), tc.segments*S; got != want {
			t.Errorf("%s: read %d ciphertext bytes, want %d (%d segments)", tc.name, got, want, tc.segments)
		}
	}

	// At the default 1 MiB segment size: 100 bytes from the middle of an
	// 8 MiB recording read one segment, not the recording.
	big := randomBytes(8<<20, 23)
	bct := seal(t, big, testKey, testAD, Params{}, 24)
	bsrc := &countingReaderAt{r: bytes.NewReader(bct)}
	bra, err := NewReaderAt(bsrc, int64(len(bct)), testKey, testAD, Params{})
	if err != nil {
		t.Fatal(err)
	}
	bsrc.reset()
	buf := make([]byte, 100)
	if _, err := bra.ReadAt(buf, 4<<20+12345); err != nil || !bytes.Equal(buf, big[4<<20+12345:][:100]) {
		t.Fatalf("ReadAt: %v", err)
	}
	if got := bsrc.bytes.Load(); got != DefaultSegmentSize {
		t.Errorf("100-byte read in an 8 MiB object read %d ciphertext bytes, want %d", got, DefaultSegmentSize)
	}
}

// HTTP Range playback: ReaderAt behind io.SectionReader serves ranges
// through http.ServeContent.
func TestReaderAtServesHTTPRange(t *testing.T) {
	p := Params{SegmentSize: smallSeg}
	pt := randomBytes(50_000, 31)
	ct := seal(t, pt, testKey, testAD, p, 32)
	ra, err := NewReaderAt(bytes.NewReader(ct), int64(len(ct)), testKey, testAD, p)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/r.webm", nil)
	req.Header.Set("Range", "bytes=4000-12999")
	rec := httptest.NewRecorder()
	http.ServeContent(rec, req, "r.webm", time.Time{}, io.NewSectionReader(ra, 0, ra.PlaintextSize()))
	if rec.Code != http.StatusPartialContent {
		t.Fatalf("status %d", rec.Code)
	}
	if got, want := rec.Header().Get("Content-Range"), fmt.Sprintf("bytes 4000-12999/%d", len(pt)); got != want {
		t.Errorf("Content-Range %q, want %q", got, want)
	}
	if !bytes.Equal(rec.Body.Bytes(), pt[4000:13000]) {
		t.Error("range body differs from the plaintext")
	}
}

// FuzzReader decrypts arbitrary bytes. It must never panic, and anything
// but an untouched ciphertext must fail with an integrity error: no
// plaintext is returned without authentication.
func FuzzReader(f *testing.F) {
	p := Params{SegmentSize: smallSeg}
	valid := map[string][]byte{} // ciphertext → plaintext
	for i, size := range []int{0, 1, 100, firstPT(smallSeg), firstPT(smallSeg) + 1, 3 * smallSeg} {
		pt := randomBytes(size, uint64(i))
		ct := seal(f, pt, testKey, testAD, p, uint64(i)) // deterministic in every fuzz worker
		valid[string(ct)] = pt
		f.Add(ct)
		f.Add(ct[:len(ct)/2])
		m := bytes.Clone(ct)
		m[len(m)/2] ^= 1
		f.Add(m)
	}
	f.Add([]byte{})
	f.Add([]byte{HeaderSize})
	f.Fuzz(func(t *testing.T, ct []byte) {
		want, ok := valid[string(ct)]
		for name, open := range map[string]func(ct, key, ad []byte, p Params) ([]byte, error){
			"Reader":   openAll,
			"ReaderAt": openAt,
		} {
			got, err := open(ct, testKey, testAD, p)
			switch {
			case ok && (err != nil || !bytes.Equal(got, want)):
				t.Fatalf("%s: valid ciphertext: err=%v", name, err)
			case !ok && err == nil:
				t.Fatalf("%s: forged ciphertext of %d bytes decrypted", name, len(ct))
			case !ok && !errors.Is(err, ErrAuthentication):
				t.Fatalf("%s: error %v is not an integrity error", name, err)
			}
		}
	})
}

const benchSize = 16 << 20

func BenchmarkEncrypt(b *testing.B) {
	pt := randomBytes(benchSize, 1)
	const chunk = 64 << 10 // WebM blocks arrive in small writes
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		w, err := NewWriter(io.Discard, testKey, testAD, Params{})
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(pt); off += chunk {
			w.Write(pt[off : off+chunk])
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	ct := seal(b, randomBytes(benchSize, 1), testKey, testAD, Params{}, 1)
	buf := make([]byte, 64<<10)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(ct), testKey, testAD, Params{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := r.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRawAESGCM is the ceiling: crypto/cipher sealing the same data in
// 1 MiB chunks with no framing.
func BenchmarkRawAESGCM(b *testing.B) {
	pt := randomBytes(benchSize, 1)
	block, err := aes.NewCipher(testKey)
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 1<<20+TagSize)
	nonce := make([]byte, aead.NonceSize())
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		for off := 0; off < len(pt); off += 1 << 20 {
			dst = aead.Seal(dst[:0], nonce, pt[off:off+1<<20], nil)
		}
	}
}
