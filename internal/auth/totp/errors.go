package totp

import "errors"

var (
	// ErrSecret means a stored TOTP secret is not base32 of 16 to 64 bytes.
	ErrSecret = errors.New("totp: malformed secret")
	// ErrCount means NewRecoveryCodes was asked for a count outside 1..100.
	ErrCount = errors.New("totp: recovery code count out of range")
)
