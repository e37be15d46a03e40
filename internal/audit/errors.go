package audit

import "errors"

var (
	// ErrInvalid is returned for an event that cannot be recorded as given.
	ErrInvalid = errors.New("audit: invalid event")
	// ErrTampered is returned by VerifyCommand when verification found the
	// trail altered.
	ErrTampered = errors.New("audit: trail tampered")
	// ErrNoKey is returned when a signing or verifying key is missing or
	// malformed.
	ErrNoKey = errors.New("audit: no valid Ed25519 key")
)
