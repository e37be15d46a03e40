package e2e

import "github.com/openvisit/openvisit/internal/store"

// FinalRecordings reports whether recs are n recordings, each complete or
// incomplete: what the recording tests wait for once a visit's recording
// has stopped.
func FinalRecordings(recs []store.Recording, n int) bool {
	if len(recs) != n {
		return false
	}
	for _, r := range recs {
		if r.Status != store.RecComplete && r.Status != store.RecIncomplete {
			return false
		}
	}
	return true
}
