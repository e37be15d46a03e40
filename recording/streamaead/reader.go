package streamaead

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"sync"
)

// readHeader checks the header and returns the segment cipher and nonce
// prefix it determines.
func readHeader(header *[HeaderSize]byte, key, associatedData []byte) (cipher.AEAD, [noncePrefixSize]byte, error) {
	var prefix [noncePrefixSize]byte
	if header[0] != HeaderSize {
		return nil, prefix, ErrHeader
	}
	aead, err := newAEAD(key, header[1:1+saltSize], associatedData)
	if err != nil {
		return nil, prefix, err
	}
	copy(prefix[:], header[1+saltSize:])
	return aead, prefix, nil
}

// segmentOpener authenticates and decrypts segments. It is shared by Reader
// and ReaderAt.
type segmentOpener struct {
	aead        cipher.AEAD
	noncePrefix [noncePrefixSize]byte
	nonce       [nonceSize]byte
	segSize     int    // ciphertext segment size
	pt          []byte // one plaintext segment (cap segSize-TagSize)
}

// open decrypts ciphertext segment i into o.pt and returns the plaintext.
// A failed final segment that authenticates as a non-final, full-size one
// means the real final segment was dropped: ErrTruncated. No plaintext of a
// segment that failed is returned or kept.
func (o *segmentOpener) open(i uint64, ct []byte, last bool) ([]byte, error) {
	if len(ct) < TagSize {
		return nil, &SegmentError{i, ErrTruncated}
	}
	if i >= maxSegments {
		return nil, ErrTooLarge
	}
	segmentNonce(&o.nonce, &o.noncePrefix, i, last)
	pt, err := o.aead.Open(o.pt[:0], o.nonce[:], ct, nil)
	if err == nil {
		return pt, nil
	}
	full := o.segSize
	if i == 0 {
		full -= HeaderSize
	}
	if last && len(ct) == full {
		segmentNonce(&o.nonce, &o.noncePrefix, i, false)
		if _, err := o.aead.Open(o.pt[:0], o.nonce[:], ct, nil); err == nil {
			clear(o.pt[:cap(o.pt)])
			return nil, &SegmentError{i, ErrTruncated}
		}
	}
	return nil, &SegmentError{i, ErrAuthentication}
}

// close zeroes the plaintext buffer and drops the key.
func (o *segmentOpener) close() {
	clear(o.pt[:cap(o.pt)])
	clear(o.noncePrefix[:])
	o.pt, o.aead = nil, nil
}

// Reader decrypts a stream read from src. Lifecycle: NewReader reads the
// header and authenticates the first segment (so a wrong key, wrong
// associated data or a damaged header fails there, before any byte is
// served); Read returns plaintext only from segments that have
// authenticated, and io.EOF only after the final segment (flag 1) has
// authenticated; any failure is sticky. Close (optional) zeroes the buffers.
// A Reader is not safe for concurrent use.
type Reader struct {
	src   io.Reader
	o     segmentOpener
	ct    []byte // one ciphertext segment plus one byte of look-ahead
	carry bool   // ct[0] holds the look-ahead byte of the next segment
	avail []byte // authenticated plaintext not yet returned (in o.pt)
	seg   uint64 // index of the next segment to open
	done  bool   // final segment authenticated (or, in prefix mode, the stream ended)
	err   error  // sticky

	// Prefix mode (NewPrefixReader): the stream may end without its
	// final segment.
	prefix   bool
	complete bool // the final segment (flag 1) authenticated
	dropped  int  // ciphertext bytes of a partial trailing segment, dropped
}

// NewReader returns a Reader that decrypts the object read from src, which
// must have been written with the same key, associated data and Params.
func NewReader(src io.Reader, key, associatedData []byte, p Params) (*Reader, error) {
	return newReader(src, key, associatedData, p, false)
}

// NewPrefixReader is NewReader for an object whose writer may not have
// finished it (a crash before Close; OpenVisit's recovery of a multipart
// upload): it returns the plaintext of every whole segment that
// authenticates and then io.EOF, whether or not the final segment is there.
// After io.EOF, Complete says whether the final segment authenticated and
// Dropped how many ciphertext bytes of a partial trailing segment (one cut
// by the crash) were left out. A whole segment that fails authentication
// is still an error (ErrAuthentication): only the end may be missing.
func NewPrefixReader(src io.Reader, key, associatedData []byte, p Params) (*Reader, error) {
	return newReader(src, key, associatedData, p, true)
}

func newReader(src io.Reader, key, associatedData []byte, p Params, prefixMode bool) (*Reader, error) {
	seg, err := p.checkKey(key)
	if err != nil {
		return nil, err
	}
	var header [HeaderSize]byte
	if _, err := io.ReadFull(src, header[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("header: %w", ErrTruncated)
		}
		return nil, fmt.Errorf("streamaead: read header: %w", err)
	}
	aead, prefix, err := readHeader(&header, key, associatedData)
	if err != nil {
		return nil, err
	}
	r := &Reader{
		src: src,
		o: segmentOpener{
			aead:        aead,
			noncePrefix: prefix,
			segSize:     seg,
			pt:          make([]byte, 0, seg-TagSize),
		},
		ct:     make([]byte, seg+1),
		prefix: prefixMode,
	}
	if r.next(); r.err != nil {
		err := r.err
		r.Close()
		return nil, err
	}
	return r, nil
}

// Read reads authenticated plaintext into p.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, r.err
	}
	for len(r.avail) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			r.o.close()
			return 0, io.EOF
		}
		r.next()
	}
	n := copy(p, r.avail)
	r.avail = r.avail[n:]
	return n, nil
}

// next reads and opens the next segment. A segment is the final one when the
// stream ends before the byte after it.
func (r *Reader) next() {
	lim := len(r.ct)
	if r.seg == 0 {
		lim -= HeaderSize
	}
	start := 0
	if r.carry {
		start = 1
	}
	n, err := io.ReadFull(r.src, r.ct[start:lim])
	last := false
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	default:
		r.fail(fmt.Errorf("streamaead: read segment %d: %w", r.seg, err))
		return
	}
	size := start + n
	if !last {
		size-- // the look-ahead byte belongs to the next segment
	}
	pt, err := r.o.open(r.seg, r.ct[:size], last)
	if err != nil && last && r.prefix {
		pt, err = r.endPrefix(size, err)
	} else if err == nil && last {
		r.complete = true
	}
	if err != nil {
		r.fail(err)
		return
	}
	if !last {
		r.ct[0] = r.ct[size]
		r.carry = true
	}
	r.avail = pt
	r.seg++
	r.done = last
}

// endPrefix handles, in prefix mode, a stream that ends on a segment that
// did not open as the final one: a whole segment that opens as non-final
// is the last of the prefix; a partial one is dropped (the crash cut it).
func (r *Reader) endPrefix(size int, err error) ([]byte, error) {
	if errors.Is(err, ErrTruncated) && size >= TagSize {
		return r.o.open(r.seg, r.ct[:size], false)
	}
	full := r.o.segSize
	if r.seg == 0 {
		full -= HeaderSize
	}
	if size < full {
		r.dropped = size
		return nil, nil
	}
	return nil, err
}

// Complete reports, after io.EOF, whether the object's final segment
// authenticated (always true for a Reader from NewReader).
func (r *Reader) Complete() bool { return r.complete }

// Dropped returns, after io.EOF in prefix mode, the ciphertext bytes of a
// partial trailing segment that were left out.
func (r *Reader) Dropped() int { return r.dropped }

func (r *Reader) fail(err error) {
	r.err = err
	r.avail = nil
	r.o.close()
}

// Close zeroes the buffers and drops the key; later Reads return ErrClosed.
// It does not close src.
func (r *Reader) Close() error {
	r.fail(ErrClosed)
	r.ct = nil
	return nil
}

// ReaderAt decrypts any range of an object without reading the rest: ReadAt
// reads and authenticates only the segments that overlap the range, so HTTP
// Range requests cost one segment per segment touched. Lifecycle:
// NewReaderAt reads the header and authenticates the final segment, which
// proves the key, the associated data and the object's length
// (PlaintextSize) before anything is served; ReadAt may then be called any
// number of times, concurrently (calls are serialised on one segment
// buffer); Close (optional) zeroes the buffers. For an io.ReadSeeker (e.g.
// http.ServeContent) use io.NewSectionReader(ra, 0, ra.PlaintextSize()).
type ReaderAt struct {
	src     io.ReaderAt
	size    int64  // ciphertext size
	nseg    uint64 // number of segments
	ptSize  int64
	mu      sync.Mutex
	o       segmentOpener
	ct      []byte
	cached  int64  // index of the segment whose plaintext is in plain, or -1
	plain   []byte // authenticated plaintext of segment cached
	closed  bool
	segSize int
	// final: segment nseg-1 is the object's final segment (flag 1). A
	// prefix reader (NewPrefixReaderAt) serves non-final segments only.
	final bool
}

// NewReaderAt returns a ReaderAt over the size-byte object in src, which
// must have been written with the same key, associated data and Params.
func NewReaderAt(src io.ReaderAt, size int64, key, associatedData []byte, p Params) (*ReaderAt, error) {
	seg, err := p.checkKey(key)
	if err != nil {
		return nil, err
	}
	if size < HeaderSize+TagSize {
		return nil, fmt.Errorf("object of %d bytes: %w", size, ErrTruncated)
	}
	aead, prefix, err := readHeaderAt(src, key, associatedData)
	if err != nil {
		return nil, err
	}
	// Segment 0 is [HeaderSize, seg), segment i>0 is [i*seg, (i+1)*seg).
	nseg := uint64((size + int64(seg) - 1) / int64(seg))
	if nseg > maxSegments {
		return nil, ErrTooLarge
	}
	// Every segment but the last is full; each carries one tag.
	return openSegments(src, aead, prefix, seg, nseg, size, size-HeaderSize-int64(nseg)*TagSize, true)
}

// readHeaderAt reads the header at the start of src and derives the
// object's key from it (readHeader).
func readHeaderAt(src io.ReaderAt, key, associatedData []byte) (cipher.AEAD, [noncePrefixSize]byte, error) {
	var header [HeaderSize]byte
	if err := readFullAt(src, header[:], 0); err != nil {
		return nil, [noncePrefixSize]byte{}, fmt.Errorf("header: %w", err)
	}
	return readHeader(&header, key, associatedData)
}

// openSegments builds the ReaderAt of nseg segments of seg bytes in src
// (size bytes of them, ptSize of plaintext), the last of them final or not,
// and authenticates that last segment before anything is read.
func openSegments(src io.ReaderAt, aead cipher.AEAD, prefix [noncePrefixSize]byte, seg int, nseg uint64, size, ptSize int64, final bool) (*ReaderAt, error) {
	ra := &ReaderAt{
		src:    src,
		size:   size,
		nseg:   nseg,
		ptSize: ptSize,
		o: segmentOpener{
			aead:        aead,
			noncePrefix: prefix,
			segSize:     seg,
			pt:          make([]byte, 0, seg-TagSize),
		},
		ct:      make([]byte, seg),
		cached:  -1,
		segSize: seg,
		final:   final,
	}
	if err := ra.load(nseg - 1); err != nil {
		ra.Close()
		return nil, err
	}
	return ra, nil
}

// PlaintextSize returns the size of the plaintext. The final segment has
// authenticated, so the size is the one the writer wrote.
func (ra *ReaderAt) PlaintextSize() int64 { return ra.ptSize }

// ReadAt reads len(p) bytes of plaintext starting at off. It returns io.EOF
// when fewer bytes remain. Only authenticated bytes are copied into p; a
// segment that fails authentication ends the read with its error.
func (ra *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, ErrOffset
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.closed {
		return 0, ErrClosed
	}
	n := 0
	for n < len(p) && off < ra.ptSize {
		i, within := ra.locate(off)
		if err := ra.load(i); err != nil {
			return n, err
		}
		c := copy(p[n:], ra.plain[within:])
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// locate maps a plaintext offset to its segment and the offset within it.
func (ra *ReaderAt) locate(off int64) (uint64, int) {
	pt := int64(ra.segSize - TagSize)
	first := pt - HeaderSize
	if off < first {
		return 0, int(off)
	}
	off -= first
	return 1 + uint64(off/pt), int(off % pt)
}

// load reads and authenticates segment i unless it is already cached.
func (ra *ReaderAt) load(i uint64) error {
	if ra.cached == int64(i) {
		return nil
	}
	ra.cached, ra.plain = -1, nil
	start := int64(i) * int64(ra.segSize)
	if i == 0 {
		start = HeaderSize
	}
	end := min((int64(i)+1)*int64(ra.segSize), ra.size)
	ct := ra.ct[:end-start]
	if err := readFullAt(ra.src, ct, start); err != nil {
		if errors.Is(err, ErrAuthentication) {
			return &SegmentError{i, err}
		}
		return fmt.Errorf("segment %d: %w", i, err)
	}
	pt, err := ra.o.open(i, ct, ra.final && i == ra.nseg-1)
	if err != nil {
		return err
	}
	ra.cached, ra.plain = int64(i), pt
	return nil
}

// Close zeroes the buffers and drops the key; later ReadAt calls return
// ErrClosed. It does not close src.
func (ra *ReaderAt) Close() error {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.closed = true
	ra.o.close()
	ra.ct, ra.plain, ra.cached = nil, nil, -1
	return nil
}

// readFullAt fills p from src at off; an object shorter than expected is
// ErrTruncated.
func readFullAt(src io.ReaderAt, p []byte, off int64) error {
	n, err := src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return ErrTruncated
	}
	return fmt.Errorf("streamaead: read at %d: %w", off, err)
}
