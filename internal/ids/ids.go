// Package ids defines the typed opaque identifiers shared across OpenVisit, so
// that a participant ID cannot be passed where a visit ID belongs. IDs are
// random UUIDs rendered as strings; they carry no PHI and are safe to log.
package ids

import (
	"fmt"

	"github.com/google/uuid"
)

// VisitID names one visit (and its SFU room).
type VisitID string

// ParticipantID names one participant of one visit.
type ParticipantID string

// NodeID names one SFU media node.
type NodeID string

// UserID names one staff user (provider or admin).
type UserID string

// NewVisitID returns a fresh random visit ID.
func NewVisitID() VisitID { return VisitID(uuid.NewString()) }

// NewParticipantID returns a fresh random participant ID.
func NewParticipantID() ParticipantID { return ParticipantID(uuid.NewString()) }

// Valid reports whether s is a canonical UUID string, the only shape any of
// the IDs above take.
func Valid(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// CheckValid returns an error naming kind when s is not a canonical ID.
func CheckValid(kind, s string) error {
	if !Valid(s) {
		return fmt.Errorf("%s: not a valid id", kind)
	}
	return nil
}
