package streamaead

import (
	"fmt"
	"io"
)

// An object whose writer did not finish (OpenVisit: a recorder that crashed
// mid-chunk, whose multipart upload was completed from the parts that had
// been uploaded) has no final segment. Its whole, non-final segments are
// still authentic, and in order: the nonce of segment i binds i and the
// "not last" flag. What such an object cannot prove is where it ends, so the
// length of its prefix must come from somewhere trusted (OpenVisit stores it
// on the chunk row when it recovers the chunk), and a reader serves exactly
// that many whole segments, each authenticated as non-final. A complete
// object is still read with NewReaderAt, which demands the final segment:
// cutting a complete object remains an integrity failure.

// PrefixSegments returns how many whole segments hold plaintextSize bytes
// of plaintext, or false when plaintextSize is not exactly a whole number
// (at least one) of full segments.
func PrefixSegments(plaintextSize int64, p Params) (uint64, bool) {
	seg, err := p.segmentSize()
	if err != nil || plaintextSize <= 0 {
		return 0, false
	}
	pt := int64(seg - TagSize)
	first := pt - HeaderSize
	if plaintextSize < first || (plaintextSize-first)%pt != 0 {
		return 0, false
	}
	n := 1 + uint64((plaintextSize-first)/pt)
	if n >= maxSegments {
		return 0, false
	}
	return n, true
}

// PrefixPlaintextSize returns the plaintext held by the first n whole
// segments (n >= 1).
func PrefixPlaintextSize(n uint64, p Params) int64 {
	seg, err := p.segmentSize()
	if err != nil || n == 0 {
		return 0
	}
	pt := int64(seg - TagSize)
	return pt - HeaderSize + int64(n-1)*pt
}

// NewPrefixReaderAt returns a ReaderAt over the first plaintextSize bytes
// of an unfinished object in src: the whole segments that hold them, each
// authenticated as a non-final segment. plaintextSize must be a whole
// number of segments (PrefixSegments), else ErrPrefixSize. Like
// NewReaderAt, it authenticates the last of those segments before
// returning, so the object is proven to hold the prefix before anything is
// served. Bytes in src after the prefix (a partial segment cut by the
// crash) are never read.
func NewPrefixReaderAt(src io.ReaderAt, plaintextSize int64, key, associatedData []byte, p Params) (*ReaderAt, error) {
	seg, err := p.checkKey(key)
	if err != nil {
		return nil, err
	}
	nseg, ok := PrefixSegments(plaintextSize, p)
	if !ok {
		return nil, fmt.Errorf("%w: %d bytes", ErrPrefixSize, plaintextSize)
	}
	aead, prefix, err := readHeaderAt(src, key, associatedData)
	if err != nil {
		return nil, err
	}
	// Segments 0..nseg-1 end at nseg*seg; none of them is the final one.
	return openSegments(src, aead, prefix, seg, nseg, int64(nseg)*int64(seg), plaintextSize, false)
}
