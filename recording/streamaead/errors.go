package streamaead

import "errors"

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

// integrityError is an integrity failure that also matches ErrAuthentication.
type integrityError struct{ msg string }

func (e *integrityError) Error() string { return e.msg }

func (e *integrityError) Is(target error) bool { return target == ErrAuthentication }
