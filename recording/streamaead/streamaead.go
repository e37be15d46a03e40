// Package streamaead encrypts and decrypts recordings with the segmented
// AES-256-GCM streaming AEAD of Tink's AES-GCM-HKDF streaming construction
// (HKDF-SHA256, 32-byte derived key, first segment offset 0), so that
// tink-go's streamingaead/subtle.NewAESGCMHKDF(key, "SHA256", 32,
// segmentSize, 0) reads what Writer writes and the other way round.
//
// The object is a 40-byte header (length byte, 32-byte salt, 7-byte nonce
// prefix) followed by ciphertext segments of Params.SegmentSize bytes each
// (the first is shorter by the header, the last may be shorter), each sealed
// with AES-256-GCM under a per-object key derived by HKDF-SHA256 from the
// data key, the salt and the associated data. recording/FORMAT.md specifies
// it byte by byte.
//
// Memory is constant: a Writer or Reader holds one plaintext and one
// ciphertext segment buffer, whatever the object's size. Plaintext is never
// written anywhere but to the caller.
package streamaead

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

const (
	// KeySize is the size of the data key and of the derived segment key.
	KeySize = 32
	// TagSize is the size of the GCM tag that ends every ciphertext segment.
	TagSize = 16
	// HeaderSize is the size of the header: length byte, salt, nonce prefix.
	HeaderSize = 1 + saltSize + noncePrefixSize

	// DefaultSegmentSize is the ciphertext segment size used when
	// Params.SegmentSize is zero.
	DefaultSegmentSize = 1 << 20
	// MinSegmentSize is the smallest ciphertext segment size accepted. Tink
	// accepts anything above HeaderSize+TagSize; below 4 KiB the tag
	// overhead (>0.4%) buys nothing for media.
	MinSegmentSize = 4 << 10
	// MaxSegmentSize bounds the memory a stream holds (two segment buffers).
	MaxSegmentSize = 64 << 20

	saltSize        = KeySize // Tink: salt size equals the derived key size
	noncePrefixSize = 7
	nonceSize       = 12
	// maxSegments: Tink refuses a segment counter >= 2^32-1.
	maxSegments = math.MaxUint32
)

// Params configures the format. Writer and reader must use the same Params;
// the segment size is not recorded in the object (store it beside the
// wrapped key).
type Params struct {
	// SegmentSize is the ciphertext segment size in bytes (zero means
	// DefaultSegmentSize). Each segment carries SegmentSize-TagSize bytes of
	// plaintext, the first one HeaderSize bytes fewer.
	SegmentSize int
}

// segmentSize returns the effective ciphertext segment size.
func (p Params) segmentSize() (int, error) {
	s := p.SegmentSize
	if s == 0 {
		s = DefaultSegmentSize
	}
	if s < MinSegmentSize || s > MaxSegmentSize {
		return 0, fmt.Errorf("%w: %d not in [%d, %d]", ErrSegmentSize, s, MinSegmentSize, MaxSegmentSize)
	}
	return s, nil
}

// checkKey is segmentSize for a key that must be KeySize bytes: what every
// reader and writer checks first.
func (p Params) checkKey(key []byte) (int, error) {
	seg, err := p.segmentSize()
	if err != nil {
		return 0, err
	}
	if len(key) != KeySize {
		return 0, ErrKeySize
	}
	return seg, nil
}

// CiphertextSize returns the size of the object that Writer produces for
// plaintextSize bytes of plaintext, or -1 if plaintextSize is negative, the
// Params are invalid or the object would exceed the segment limit.
func CiphertextSize(plaintextSize int64, p Params) int64 {
	seg, err := p.segmentSize()
	if err != nil || plaintextSize < 0 {
		return -1
	}
	pt := int64(seg - TagSize)
	first := pt - HeaderSize
	n := int64(1)
	if plaintextSize > first {
		n += (plaintextSize - first + pt - 1) / pt
	}
	if n > maxSegments {
		return -1
	}
	return HeaderSize + plaintextSize + n*TagSize
}

// newAEAD derives the per-object AES-256-GCM key:
// HKDF-SHA256(IKM = data key, salt = header salt, info = associated data).
func newAEAD(key, salt, associatedData []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, ErrKeySize
	}
	dk, err := hkdf.Key(sha256.New, key, salt, string(associatedData), KeySize)
	if err != nil {
		return nil, fmt.Errorf("streamaead: derive key: %w", err)
	}
	defer clear(dk)
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, fmt.Errorf("streamaead: new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("streamaead: new GCM: %w", err)
	}
	return aead, nil
}

// segmentNonce fills nonce with prefix || uint32be(i) || last.
func segmentNonce(nonce *[nonceSize]byte, prefix *[noncePrefixSize]byte, i uint64, last bool) {
	copy(nonce[:], prefix[:])
	binary.BigEndian.PutUint32(nonce[noncePrefixSize:], uint32(i))
	nonce[nonceSize-1] = 0
	if last {
		nonce[nonceSize-1] = 1
	}
}

// Writer encrypts a stream into dst. Lifecycle: NewWriter writes the header;
// Write buffers plaintext and writes each full segment once more plaintext
// follows it; Close seals the final segment (which may be empty only when the
// whole plaintext is empty), zeroes the buffers and drops the key. Close must
// be called, or the object has no final segment and will not decrypt. A
// closed Writer cannot be reused (Write returns ErrClosed). Close does not
// close dst. A Writer is not
// safe for concurrent use.
type Writer struct {
	dst         io.Writer
	aead        cipher.AEAD
	noncePrefix [noncePrefixSize]byte
	nonce       [nonceSize]byte
	pt          []byte // one plaintext segment
	n           int    // plaintext bytes buffered in pt
	ct          []byte // one ciphertext segment
	seg         uint64 // index of the next segment to seal
	err         error  // sticky write error
	closed      bool
}

// NewWriter returns a Writer that encrypts into dst with a 32-byte data key,
// binding the object to associatedData (OpenVisit: the recording ID). It
// writes the header to dst before returning.
func NewWriter(dst io.Writer, key, associatedData []byte, p Params) (*Writer, error) {
	return newWriter(dst, key, associatedData, p, rand.Reader)
}

// newWriter is NewWriter with the salt and nonce prefix read from random;
// tests pass a deterministic source.
func newWriter(dst io.Writer, key, associatedData []byte, p Params, random io.Reader) (*Writer, error) {
	seg, err := p.checkKey(key)
	if err != nil {
		return nil, err
	}
	var header [HeaderSize]byte
	header[0] = HeaderSize
	if _, err := io.ReadFull(random, header[1:]); err != nil {
		return nil, fmt.Errorf("streamaead: random salt: %w", err)
	}
	salt := header[1 : 1+saltSize]
	aead, err := newAEAD(key, salt, associatedData)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		dst:  dst,
		aead: aead,
		pt:   make([]byte, seg-TagSize),
		ct:   make([]byte, 0, seg),
	}
	copy(w.noncePrefix[:], header[1+saltSize:])
	if _, err := dst.Write(header[:]); err != nil {
		return nil, fmt.Errorf("streamaead: write header: %w", err)
	}
	return w, nil
}

// limit is the plaintext capacity of the current segment.
func (w *Writer) limit() int {
	if w.seg == 0 {
		return len(w.pt) - HeaderSize
	}
	return len(w.pt)
}

// Write encrypts p. Full segments are sealed and written to dst as soon as
// plaintext beyond them arrives; the rest waits in the segment buffer.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		lim := w.limit()
		if w.n == lim {
			// More plaintext follows, so the buffered segment is not the last.
			if err := w.seal(w.pt[:w.n], false); err != nil {
				return written, err
			}
			w.n = 0
			continue
		}
		if w.n == 0 && len(p) > lim {
			// Seal straight from p: a whole segment with more after it.
			if err := w.seal(p[:lim], false); err != nil {
				return written, err
			}
			p = p[lim:]
			written += lim
			continue
		}
		c := copy(w.pt[w.n:lim], p)
		w.n += c
		p = p[c:]
		written += c
	}
	return written, nil
}

// seal encrypts one segment and writes it to dst.
func (w *Writer) seal(pt []byte, last bool) error {
	if w.seg >= maxSegments {
		w.err = ErrTooLarge
		return w.err
	}
	segmentNonce(&w.nonce, &w.noncePrefix, w.seg, last)
	w.ct = w.aead.Seal(w.ct[:0], w.nonce[:], pt, nil)
	if _, err := w.dst.Write(w.ct); err != nil {
		w.err = fmt.Errorf("streamaead: write segment %d: %w", w.seg, err)
		return w.err
	}
	w.seg++
	return nil
}

// Close seals and writes the final segment, then zeroes the buffers and
// drops the derived key. Closing again does nothing and returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.seal(w.pt[:w.n], true)
	}
	clear(w.pt)
	clear(w.ct[:cap(w.ct)])
	clear(w.noncePrefix[:])
	w.pt, w.ct, w.aead, w.n = nil, nil, nil, 0
	return err
}
