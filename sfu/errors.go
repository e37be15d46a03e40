package sfu

import (
	"errors"

	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// tokenCode maps a token verification or burn error to its wire code.
func tokenCode(err error) protocol.Code {
	switch {
	case errors.Is(err, token.ErrExpired), errors.Is(err, token.ErrNotYetValid):
		return protocol.CodeTokenExpired
	case errors.Is(err, token.ErrUsed):
		return protocol.CodeTokenUsed
	case errors.Is(err, token.ErrWrongVisit):
		return protocol.CodeTokenWrongVisit
	case errors.Is(err, token.ErrWrongNode):
		return protocol.CodeTokenWrongNode
	case errors.Is(err, token.ErrMalformed), errors.Is(err, token.ErrBadSignature):
		return protocol.CodeTokenInvalid
	case errors.Is(err, token.ErrRevoked):
		return protocol.CodeRemoved
	case errors.Is(err, token.ErrUnavailable):
		return protocol.CodeUnavailable
	}
	return protocol.CodeInternal
}

// Sentinel errors of this package.
var (
	ErrClosed = errors.New("sfu: closed")
	// errNoFingerprint: DTLS-SRTP is mandatory (docs/DESIGN.md decision 4).
	errNoFingerprint = errors.New("sfu: offer has no DTLS fingerprint")
)

// protoError is a protocol failure that ends the socket with code.
type protoError struct {
	code protocol.Code
	err  error // for the log only; may be nil
}

func (e *protoError) Error() string {
	if e.err != nil {
		return string(e.code) + ": " + e.err.Error()
	}
	return string(e.code)
}

func (e *protoError) Unwrap() error { return e.err }

func fail(c protocol.Code, err error) error { return &protoError{code: c, err: err} }

// errTrackClosed: a downTrack was bound after its subscriber left (or twice).
var errTrackClosed = errors.New("sfu: subscriber closed")
