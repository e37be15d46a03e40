package password

import "errors"

// Policy errors returned by Check. They are stable values meant to be mapped
// to client-facing codes; none of them carries the password.
var (
	ErrTooShort      = errors.New("password: shorter than 12 characters")
	ErrTooLong       = errors.New("password: longer than 128 characters")
	ErrNotUTF8       = errors.New("password: not valid UTF-8")
	ErrCommon        = errors.New("password: too common")
	ErrContainsEmail = errors.New("password: contains the email address")
	ErrRepeated      = errors.New("password: one short pattern repeated")
	ErrSequence      = errors.New("password: keyboard or alphabet sequence")
)

// Hashing errors.
var (
	// ErrMalformed means a stored PHC string could not be parsed, or names an
	// algorithm, version or parameters this package does not accept.
	ErrMalformed = errors.New("password: malformed or unsupported hash")
	// ErrParams means Hash was given parameters outside the accepted bounds.
	ErrParams = errors.New("password: hash parameters out of bounds")
)
