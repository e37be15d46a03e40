package sfu

import (
	"errors"

	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// Code is the protocol's wire error code; the names below are the server's
// short names for protocol.Code* (the table of close codes and client texts
// is protocol's).
type Code = protocol.Code

const (
	CodeTokenInvalid    = protocol.CodeTokenInvalid
	CodeTokenExpired    = protocol.CodeTokenExpired
	CodeTokenUsed       = protocol.CodeTokenUsed
	CodeTokenWrongVisit = protocol.CodeTokenWrongVisit
	CodeTokenWrongNode  = protocol.CodeTokenWrongNode
	CodeJoinTimeout     = protocol.CodeJoinTimeout
	CodeBadMessage      = protocol.CodeBadMessage
	CodeBadSDP          = protocol.CodeBadSDP
	CodeRemoved         = protocol.CodeRemoved
	CodeDuplicate       = protocol.CodeDuplicate
	CodeUnavailable     = protocol.CodeUnavailable
	CodeRateLimited     = protocol.CodeRateLimited
	CodeTooManyTracks   = protocol.CodeTooManyTracks
	CodeInternal        = protocol.CodeInternal
)

// Close codes that are not tied to an error message.
const (
	// closeGoingAway ends a socket without an error code: the node shuts
	// down, or the participant's media connection failed (ICE/DTLS); the
	// client should join again with a fresh token.
	closeGoingAway = protocol.CloseGoingAway
	closeNormal    = protocol.CloseNormal
)

// tokenCode maps a token verification or burn error to its wire code.
func tokenCode(err error) Code {
	switch {
	case errors.Is(err, token.ErrExpired), errors.Is(err, token.ErrNotYetValid):
		return CodeTokenExpired
	case errors.Is(err, token.ErrUsed):
		return CodeTokenUsed
	case errors.Is(err, token.ErrWrongVisit):
		return CodeTokenWrongVisit
	case errors.Is(err, token.ErrWrongNode):
		return CodeTokenWrongNode
	case errors.Is(err, token.ErrMalformed), errors.Is(err, token.ErrBadSignature):
		return CodeTokenInvalid
	case errors.Is(err, token.ErrRevoked):
		return CodeRemoved
	case errors.Is(err, token.ErrUnavailable):
		return CodeUnavailable
	}
	return CodeInternal
}

// Sentinel errors of this package.
var (
	ErrClosed = errors.New("sfu: closed")
	// errNoFingerprint: DTLS-SRTP is mandatory (docs/DESIGN.md decision 4).
	errNoFingerprint = errors.New("sfu: offer has no DTLS fingerprint")
)

// protoError is a protocol failure that ends the socket with code.
type protoError struct {
	code Code
	err  error // for the log only; may be nil
}

func (e *protoError) Error() string {
	if e.err != nil {
		return string(e.code) + ": " + e.err.Error()
	}
	return string(e.code)
}

func (e *protoError) Unwrap() error { return e.err }

func fail(c Code, err error) error { return &protoError{code: c, err: err} }

// errTrackClosed: a downTrack was bound after its subscriber left (or twice).
var errTrackClosed = errors.New("sfu: subscriber closed")
