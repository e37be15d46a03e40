package protocol

// Code is a stable wire error code (PROTOCOL.md, "Error codes and close codes").
type Code string

// The error codes of the protocol.
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

// WebSocket close codes the protocol uses (RFC 6455 and its registry).
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001 // node shutting down, media failed, no pong: join again
	CloseTooBig        = 1009
	CloseInternal      = 1011
	CloseTryAgainLater = 1013
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
	CodeUnavailable:     {CloseTryAgainLater, "the media node cannot admit anyone right now; try again shortly"},
	CodeRateLimited:     {4029, "too many messages; join again with a fresh token"},
	CodeTooManyTracks:   {4013, "the offer has more media sections than allowed"},
	CodeInternal:        {CloseInternal, "internal error"},
}

// CloseCode returns the WebSocket close code that ends a socket with c.
func (c Code) CloseCode() int {
	if e, ok := codes[c]; ok {
		return e.close
	}
	return CloseInternal
}

// Text returns the client-facing message for c.
func (c Code) Text() string {
	if e, ok := codes[c]; ok {
		return e.text
	}
	return codes[CodeInternal].text
}
