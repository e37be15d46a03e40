package recordings

import (
	"errors"
	"fmt"

	"github.com/openvisit/openvisit/recording/streamaead"
)

// Integrity failures of stored recordings, as both the storage that finds
// them (recording.Library) and the playback that reports them (signaling)
// read them: here, below both, so that neither imports the other.

// ErrIntegrityFailed: the chunk failed its integrity check before (it is
// marked on its row) and is not served again. An integrity failure.
var ErrIntegrityFailed = fmt.Errorf("recording: chunk failed an integrity check earlier: %w", streamaead.ErrAuthentication)

// IsIntegrityFailure reports whether err means stored ciphertext failed
// authentication: modified or damaged (corruption or tampering), cut short,
// or an object that is not the chunk's. Storage being unreachable is not.
func IsIntegrityFailure(err error) bool { return errors.Is(err, streamaead.ErrAuthentication) }

// FailedSegment returns the segment an integrity failure names, if any.
func FailedSegment(err error) (uint64, bool) {
	var se *streamaead.SegmentError
	if errors.As(err, &se) {
		return se.Segment, true
	}
	return 0, false
}
