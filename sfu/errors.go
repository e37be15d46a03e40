package sfu

import (
	"errors"

	"github.com/gorilla/websocket"

	"github.com/openvisit/openvisit/internal/token"
)

// Code is a stable wire error code (PROTOCOL.md, "Error codes and close codes").
type Code string

const (
	CodeTokenInvalid    Code = "token_invalid"
	CodeTokenExpired    Code = "token_expired"
	CodeTokenUsed       Code = "token_used"
	CodeTokenWrongVisit Code = "token_wrong_visit"
	CodeTokenWrongNode  Code = "token_wrong_node"
	CodeJoinTimeout     Code = "join_timeout"
	CodeBadMessage      Code = "bad_message"
	CodeBadSDP          Code = "bad_sdp"
	CodeRemoved         Code = "removed"
	CodeDuplicate       Code = "duplicate"
	CodeUnavailable     Code = "unavailable"
	CodeRateLimited     Code = "rate_limited"
	CodeTooManyTracks   Code = "too_many_tracks"
	CodeInternal        Code = "internal"
)

// Close codes that are not tied to an error message.
const (
	// closeGoingAway ends a socket without an error code: the node shuts
	// down, or the participant's media connection failed (ICE/DTLS); the
	// client should join again with a fresh token.
	closeGoingAway = websocket.CloseGoingAway // 1001
	closeNormal    = websocket.CloseNormalClosure
)

// codes is the one table mapping a wire code to its WebSocket close code and
// the human message the client sees. Messages never carry PHI or detail.
var codes = map[Code]struct {
	close int
	text  string
}{
	CodeTokenInvalid:    {4001, "the join token is invalid"},
	CodeTokenExpired:    {4001, "the join token has expired or is not yet valid"},
	CodeTokenUsed:       {4001, "the join token was already used"},
	CodeTokenWrongVisit: {4003, "the join token is for another visit"},
	CodeTokenWrongNode:  {4003, "the join token is for another media node"},
	CodeJoinTimeout:     {4008, "no join message in time"},
	CodeBadMessage:      {4000, "malformed or unexpected message"},
	CodeBadSDP:          {4000, "the session description was refused"},
	CodeRemoved:         {4010, "removed from the visit"},
	CodeDuplicate:       {4009, "joined again from another connection"},
	CodeUnavailable:     {websocket.CloseTryAgainLater, "the media node cannot admit anyone right now; try again shortly"},
	CodeRateLimited:     {4029, "too many messages; join again with a fresh token"},
	CodeTooManyTracks:   {4013, "the offer has more media sections than allowed"},
	CodeInternal:        {websocket.CloseInternalServerErr, "internal error"},
}

// closeCode returns the WebSocket close code for c.
func closeCode(c Code) int {
	if e, ok := codes[c]; ok {
		return e.close
	}
	return websocket.CloseInternalServerErr
}

// errorText returns the client-facing message for c.
func errorText(c Code) string {
	if e, ok := codes[c]; ok {
		return e.text
	}
	return codes[CodeInternal].text
}

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
