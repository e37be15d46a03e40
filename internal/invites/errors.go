package invites

import "time"

// Refusal is why an invite cannot be used. Code is stable: it is the API's
// error code and the audit entry's reason. None reveals whether a patient
// exists or what their date of birth is.
type Refusal struct {
	Code string
	// From is when a link used too early opens (ErrTooEarly).
	From time.Time
	// TriesLeft is how many dates of birth remain before the link locks
	// (ErrWrongDOB).
	TriesLeft int
}

func (r *Refusal) Error() string { return "invites: " + r.Code }

// Is matches refusals by code, so errors.Is(err, ErrTooEarly) holds for a
// refusal that carries its time.
func (r *Refusal) Is(target error) bool {
	t, ok := target.(*Refusal)
	return ok && t.Code == r.Code
}

// The refusals.
var (
	ErrInvalid    = &Refusal{Code: "invite_invalid"}
	ErrRevoked    = &Refusal{Code: "invite_revoked"}
	ErrUsed       = &Refusal{Code: "invite_used"}
	ErrLocked     = &Refusal{Code: "invite_locked"}
	ErrVisitEnded = &Refusal{Code: "visit_ended"}
	ErrExpired    = &Refusal{Code: "invite_expired"}
	ErrTooEarly   = &Refusal{Code: "too_early"}
	ErrNoPatient  = &Refusal{Code: "no_patient"}
	ErrWrongDOB   = &Refusal{Code: "wrong_date_of_birth"}
	// ErrFull: the visit already holds store.MaxPeople people.
	ErrFull = &Refusal{Code: "visit_full"}
)
