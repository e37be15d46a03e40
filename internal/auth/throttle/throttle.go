// Package throttle slows down password guessing in two places: per account
// (exponential backoff, then a lock only an admin lifts) and per client
// address (a token bucket). Both take the time from the caller, so tests and
// the account store decide what "now" is.
package throttle

import (
	"math"
	"time"
)

// Account throttle parameters.
const (
	// FreeFailures is how many consecutive failures are allowed without delay.
	FreeFailures = 5
	// BaseDelay is the wait after the FreeFailures-th failure; it doubles with
	// each further failure up to MaxDelay.
	BaseDelay = time.Second
	MaxDelay  = 15 * time.Minute
	// LockAfter consecutive failures lock the account until an admin unlocks
	// it (Unlock).
	LockAfter = 20
)

// Forever is the retryAfter Decide returns for a locked account.
const Forever = time.Duration(math.MaxInt64)

// State is one account's failure record, stored with the account.
type State struct {
	Failures    int       // consecutive failed attempts
	LastFailure time.Time // when the last one happened
	Locked      bool      // set at LockAfter failures; cleared only by Unlock
}

// Decide reports whether a sign-in attempt may be checked now. When not,
// retryAfter is how long to wait (for a Retry-After header), or Forever when
// the account is locked. Refused attempts are not failures: do not call
// OnFailure for them, and do not check the password.
func Decide(s State, now time.Time) (allowed bool, retryAfter time.Duration) {
	if s.Locked || s.Failures >= LockAfter { // a count at the limit is a lock, whatever the flag says
		return false, Forever
	}
	d := Delay(s.Failures)
	if d == 0 {
		return true, 0
	}
	elapsed := now.Sub(s.LastFailure)
	if elapsed < 0 { // clock stepped back: wait the full delay, no more
		elapsed = 0
	}
	if elapsed >= d {
		return true, 0
	}
	return false, d - elapsed
}

// Delay is the wait required after the given number of consecutive failures:
// 0 below FreeFailures, then 1 s, 2 s, 4 s … capped at MaxDelay.
func Delay(failures int) time.Duration {
	if failures < FreeFailures {
		return 0
	}
	n := failures - FreeFailures
	if n >= 30 { // far past the cap; avoid shifting into overflow
		return MaxDelay
	}
	return min(BaseDelay<<n, MaxDelay)
}

// OnFailure records a failed attempt (wrong password or wrong second factor)
// and locks the account at LockAfter consecutive failures.
func OnFailure(s State, now time.Time) State {
	s.Failures++
	s.LastFailure = now
	if s.Failures >= LockAfter {
		s.Locked = true
	}
	return s
}

// OnSuccess records a successful sign-in: the failure count starts over. A
// locked account stays locked (Decide never lets it reach a success).
func OnSuccess(s State) State {
	if s.Locked {
		return s
	}
	return State{}
}

// Unlock is the admin's action: the account starts with a clean record.
func Unlock(State) State { return State{} }
