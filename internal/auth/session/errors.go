package session

import "errors"

var (
	// ErrIdleExpired means the session saw no activity for longer than the
	// policy's idle limit.
	ErrIdleExpired = errors.New("session: idle timeout")
	// ErrAbsoluteExpired means the session is older than the policy's
	// absolute limit, however active.
	ErrAbsoluteExpired = errors.New("session: absolute timeout")
)
