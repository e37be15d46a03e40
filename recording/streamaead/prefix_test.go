package streamaead

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// unfinished encrypts pt with a Writer that is never closed, as a recorder
// that crashed leaves it: the header and every segment sealed so far (all
// non-final), the rest still in the Writer's buffer.
func unfinished(t testing.TB, pt []byte, p Params) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newWriter(&buf, testKey, testAD, p, detRand(7))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pt); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readPrefix(ct []byte, p Params) ([]byte, *Reader, error) {
	r, err := NewPrefixReader(bytes.NewReader(ct), testKey, testAD, p)
	if err != nil {
		return nil, nil, err
	}
	out, err := io.ReadAll(r)
	return out, r, err
}

// TestPrefixReader: the prefix reader returns every whole segment that
// authenticates, says whether the final segment was there, and drops a
// partial trailing segment; a damaged whole segment is still an error.
func TestPrefixReader(t *testing.T) {
	const S = smallSeg
	p := Params{SegmentSize: S}
	pt := randomBytes(firstPT(S)+4*ptSeg(S)+1234, 3)
	ct := seal(t, pt, testKey, testAD, p, 4) // segments 0..4 full, 5 final (partial)
	crashed := unfinished(t, pt, p)          // segments 0..4 sealed, the rest unwritten
	if len(crashed) != 5*S {
		t.Fatalf("unfinished object: %d bytes, want %d", len(crashed), 5*S)
	}
	flipped := bytes.Clone(ct)
	flipped[2*S+10] ^= 0x80
	for _, tc := range []struct {
		name     string
		ct       []byte
		want     []byte
		complete bool
		dropped  int
		err      error
	}{
		{"complete object", ct, pt, true, 0, nil},
		{"writer never closed", crashed, pt[:PrefixPlaintextSize(5, p)], false, 0, nil},
		{"cut at a segment boundary", ct[:3*S], pt[:PrefixPlaintextSize(3, p)], false, 0, nil},
		{"cut mid-segment", ct[:3*S+700], pt[:PrefixPlaintextSize(3, p)], false, 700, nil},
		{"cut inside segment 0", ct[:HeaderSize+100], []byte{}, false, 100, nil},
		{"header only", ct[:HeaderSize], []byte{}, false, 0, nil},
		{"whole segment damaged", flipped, nil, false, 0, ErrAuthentication},
		{"damaged segment at the end", flipped[:3*S], nil, false, 0, ErrAuthentication},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, r, err := readPrefix(tc.ct, p)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				var se *SegmentError
				if !errors.As(err, &se) || se.Segment != 2 {
					t.Errorf("err = %v, want a SegmentError naming segment 2", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %d bytes, want %d (the whole segments)", len(got), len(tc.want))
			}
			if r.Complete() != tc.complete || r.Dropped() != tc.dropped {
				t.Errorf("complete %v dropped %d, want %v %d", r.Complete(), r.Dropped(), tc.complete, tc.dropped)
			}
		})
	}
	// NewReader (not prefix mode) still refuses every unfinished object.
	for _, bad := range [][]byte{crashed, ct[:3*S], ct[:3*S+700]} {
		if _, err := openAll(bad, testKey, testAD, p); !errors.Is(err, ErrAuthentication) {
			t.Errorf("NewReader on an unfinished object: %v, want an integrity error", err)
		}
	}
}

// TestPrefixReaderAt: a chunk recovered after a crash is served exactly up
// to its recorded prefix, with Range reads anywhere in it; a complete
// object cut short still fails NewReaderAt; damage inside the prefix fails
// the segment it is in.
func TestPrefixReaderAt(t *testing.T) {
	const S = smallSeg
	p := Params{SegmentSize: S}
	pt := randomBytes(firstPT(S)+4*ptSeg(S)+1234, 5)
	crashed := unfinished(t, pt, p)
	// The last uploaded part ended mid-segment: 300 bytes of segment 5.
	object := append(bytes.Clone(crashed), seal(t, pt, testKey, testAD, p, 7)[5*S:5*S+300]...)
	ps := PrefixPlaintextSize(5, p)

	ra, err := NewPrefixReaderAt(bytes.NewReader(object), ps, testKey, testAD, p)
	if err != nil {
		t.Fatal(err)
	}
	if ra.PlaintextSize() != ps {
		t.Fatalf("size %d, want %d", ra.PlaintextSize(), ps)
	}
	whole, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.PlaintextSize()))
	if err != nil || !bytes.Equal(whole, pt[:ps]) {
		t.Fatalf("whole prefix: %v (%d bytes)", err, len(whole))
	}
	for _, r := range [][2]int64{{0, 10}, {int64(firstPT(S)) - 5, 20}, {ps - 100, 100}, {ps - 1, 1}} {
		buf := make([]byte, r[1])
		if n, err := ra.ReadAt(buf, r[0]); err != nil || !bytes.Equal(buf[:n], pt[r[0]:r[0]+r[1]]) {
			t.Errorf("ReadAt(%d, %d): %d, %v", r[0], r[1], n, err)
		}
	}
	if n, err := ra.ReadAt(make([]byte, 10), ps-5); n != 5 || err != io.EOF {
		t.Errorf("read past the prefix: %d, %v; want 5, EOF", n, err)
	}
	ra.Close()

	// A normal (complete) chunk cut the same way is an integrity failure.
	if _, err := NewReaderAt(bytes.NewReader(object), int64(len(object)), testKey, testAD, p); !errors.Is(err, ErrAuthentication) {
		t.Errorf("NewReaderAt on an unfinished object: %v, want an integrity error", err)
	}
	// A prefix longer than the object holds, or not whole segments.
	if _, err := NewPrefixReaderAt(bytes.NewReader(object), PrefixPlaintextSize(6, p), testKey, testAD, p); !errors.Is(err, ErrTruncated) {
		t.Errorf("prefix past the object: %v, want ErrTruncated", err)
	}
	for _, bad := range []int64{0, -1, 1, ps - 1, ps + 1} {
		if _, err := NewPrefixReaderAt(bytes.NewReader(object), bad, testKey, testAD, p); !errors.Is(err, ErrPrefixSize) {
			t.Errorf("prefix of %d bytes: %v, want ErrPrefixSize", bad, err)
		}
	}
	// The final segment of a complete object is not a prefix segment.
	full := seal(t, pt[:PrefixPlaintextSize(3, p)], testKey, testAD, p, 8) // segments 0..2, the last final and full
	if _, err := NewPrefixReaderAt(bytes.NewReader(full), PrefixPlaintextSize(3, p), testKey, testAD, p); !errors.Is(err, ErrAuthentication) {
		t.Errorf("final segment read as a prefix: %v, want an integrity error", err)
	}
	// Damage inside the prefix: the segment fails, its error names it.
	damaged := bytes.Clone(object)
	damaged[3*S+77] ^= 1
	ra, err = NewPrefixReaderAt(bytes.NewReader(damaged), ps, testKey, testAD, p)
	if err != nil {
		t.Fatal(err) // segment 4 (the one checked first) is intact
	}
	defer ra.Close()
	var se *SegmentError
	if _, err := ra.ReadAt(make([]byte, 10), PrefixPlaintextSize(3, p)+5); !errors.As(err, &se) || se.Segment != 3 || !errors.Is(err, ErrAuthentication) {
		t.Errorf("read of a damaged segment: %v, want segment 3 failing authentication", err)
	}
	if n, err := ra.ReadAt(make([]byte, 10), 0); n != 10 || err != nil {
		t.Errorf("segments before the damage: %d, %v", n, err)
	}
}

// FuzzPrefixReader: whatever the bytes, the prefix reader never panics and
// returns only plaintext that authenticated: a prefix of what was written.
func FuzzPrefixReader(f *testing.F) {
	p := Params{SegmentSize: smallSeg}
	pt := randomBytes(3*smallSeg+500, 9)
	ct := seal(f, pt, testKey, testAD, p, 9)
	for _, n := range []int{0, 20, HeaderSize, HeaderSize + 10, smallSeg, 2*smallSeg + 3, len(ct)} {
		f.Add(ct[:n])
	}
	m := bytes.Clone(ct)
	m[smallSeg+5] ^= 4
	f.Add(m)
	f.Fuzz(func(t *testing.T, in []byte) {
		got, _, err := readPrefix(in, p)
		if err != nil {
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("error %v is not an integrity error", err)
			}
			return
		}
		if !bytes.HasPrefix(pt, got) {
			t.Fatalf("%d bytes of plaintext that were never written", len(got))
		}
	})
}
