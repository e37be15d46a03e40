package streamaead

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	tinksubtle "github.com/tink-crypto/tink-go/v2/streamingaead/subtle"
)

// interopSizes are plaintext sizes around the segment boundaries of seg.
func interopSizes(seg int, large int) []int {
	p, p0 := ptSeg(seg), firstPT(seg)
	return []int{
		0, 1, p0 - 1, p0, p0 + 1, // exactly one segment, and one byte over
		p0 + p, p0 + p + 1, p0 + 3*p, p0 + 3*p - 7, // across boundaries
		large, // multiple MiB
	}
}

// TestTinkInterop checks both directions against tink-go's independent
// implementation of AES-GCM-HKDF streaming with the parameters OpenVisit
// uses (HKDF-SHA256, 32-byte derived key, first segment offset 0).
func TestTinkInterop(t *testing.T) {
	for _, tc := range []struct {
		seg   int
		large int
	}{
		{DefaultSegmentSize, 3<<20 + 12345},
		{smallSeg, 1<<20 + 17},
	} {
		tink, err := tinksubtle.NewAESGCMHKDF(testKey, "SHA256", KeySize, tc.seg, 0)
		if err != nil {
			t.Fatalf("tink: %v", err)
		}
		p := Params{SegmentSize: tc.seg}
		if tc.seg == DefaultSegmentSize {
			p = Params{} // the default must mean 1 MiB
		}
		for _, size := range interopSizes(tc.seg, tc.large) {
			t.Run(fmt.Sprintf("seg=%d/size=%d", tc.seg, size), func(t *testing.T) {
				pt := randomBytes(size, uint64(size))

				// Ours → Tink, written in uneven chunks through the real API.
				var buf bytes.Buffer
				w, err := NewWriter(&buf, testKey, testAD, p)
				if err != nil {
					t.Fatal(err)
				}
				for rest := pt; len(rest) > 0; {
					n := min(len(rest), 1000+len(rest)%3001)
					if _, err := w.Write(rest[:n]); err != nil {
						t.Fatal(err)
					}
					rest = rest[n:]
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				ct := buf.Bytes()
				if got, want := int64(len(ct)), CiphertextSize(int64(size), p); got != want {
					t.Errorf("len(ciphertext) = %d, CiphertextSize = %d", got, want)
				}
				tr, err := tink.NewDecryptingReader(bytes.NewReader(ct), testAD)
				if err != nil {
					t.Fatalf("tink NewDecryptingReader: %v", err)
				}
				got, err := io.ReadAll(tr)
				if err != nil {
					t.Fatalf("tink decrypt: %v", err)
				}
				if !bytes.Equal(got, pt) {
					t.Fatalf("tink decrypted %d bytes, differ from the %d written", len(got), len(pt))
				}

				// Tink → ours, Reader and ReaderAt.
				buf.Reset()
				tw, err := tink.NewEncryptingWriter(&buf, testAD)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tw.Write(pt); err != nil {
					t.Fatal(err)
				}
				if err := tw.Close(); err != nil {
					t.Fatal(err)
				}
				tct := buf.Bytes()
				if got, want := int64(len(tct)), CiphertextSize(int64(size), p); got != want {
					t.Errorf("len(tink ciphertext) = %d, CiphertextSize = %d", got, want)
				}
				if got, err := openAll(tct, testKey, testAD, p); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Reader on tink ciphertext: err=%v equal=%v", err, bytes.Equal(got, pt))
				}
				if got, err := openAt(tct, testKey, testAD, p); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("ReaderAt on tink ciphertext: err=%v equal=%v", err, bytes.Equal(got, pt))
				}
			})
		}
	}
}
