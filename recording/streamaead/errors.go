package streamaead

import (
	"errors"
	"fmt"
)

// Integrity failures. ErrTruncated and ErrHeader are refinements of
// ErrAuthentication: errors.Is(err, ErrAuthentication) is true for all three,
// so a caller that only needs "the object failed its integrity check" tests
// ErrAuthentication alone. No error carries key material or plaintext.
var (
	// ErrAuthentication means a segment did not authenticate: the ciphertext
	// was modified, segments were reordered or cut, or the key or associated
	// data (the recording ID) is not the one the object was written with.
	ErrAuthentication = errors.New("streamaead: authentication failed (ciphertext modified, reordered or truncated, or wrong key or associated data)")

	// ErrTruncated means the object ends early: it is shorter than a header
	// plus one tag, its final segment is shorter than a tag, or its last
	// segment authenticates only as a non-final segment (the final segment
	// was dropped).
	ErrTruncated error = &integrityError{"streamaead: ciphertext truncated (object ends before its final segment)"}

	// ErrHeader means the header's length byte does not match this format.
	ErrHeader error = &integrityError{"streamaead: invalid header (not an AES-GCM-HKDF streaming object with these parameters)"}
)

// Usage errors.
var (
	// ErrKeySize means the data key is not KeySize bytes.
	ErrKeySize = errors.New("streamaead: data key must be 32 bytes")

	// ErrSegmentSize means Params.SegmentSize is outside
	// [MinSegmentSize, MaxSegmentSize].
	ErrSegmentSize = errors.New("streamaead: segment size out of range")

	// ErrClosed means Write was called on a closed Writer, or Read or
	// ReadAt on a closed Reader or ReaderAt.
	ErrClosed = errors.New("streamaead: use of closed stream")

	// ErrTooLarge means the object would need more than 2^32-1 segments.
	ErrTooLarge = errors.New("streamaead: object exceeds the maximum number of segments")

	// ErrOffset means ReadAt was called with a negative offset.
	ErrOffset = errors.New("streamaead: negative offset")
)

// SegmentError says which segment of an object failed; it wraps the
// integrity error (ErrAuthentication, ErrTruncated), so errors.Is works on
// it. A caller reporting a failure names the segment with it.
type SegmentError struct {
	Segment uint64
	Err     error
}

func (e *SegmentError) Error() string { return fmt.Sprintf("segment %d: %v", e.Segment, e.Err) }

func (e *SegmentError) Unwrap() error { return e.Err }

// ErrPrefixSize means NewPrefixReaderAt was given a plaintext size that is
// not a whole number of non-final segments.
var ErrPrefixSize = errors.New("streamaead: prefix size is not a whole number of segments")

// integrityError is an integrity failure that also matches ErrAuthentication.
type integrityError struct{ msg string }

func (e *integrityError) Error() string { return e.msg }

func (e *integrityError) Is(target error) bool { return target == ErrAuthentication }
