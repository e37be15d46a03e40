// Package protocol holds the messages of the SFU's WebSocket signaling
// protocol (sfu/PROTOCOL.md), shared by the server (package sfu) and every
// client (package sfu/client: the recorder, the load generator, the tests).
// It is the wire format only: how the server checks what clients send lives
// with the server, what a client does with what it receives with the client.
//
// Field names and omitempty are the wire format: changing one changes what
// browsers receive.
package protocol

import "github.com/openvisit/openvisit/internal/ids"

// Message types (the "type" field).
const (
	TypeJoin              = "join"
	TypeJoined            = "joined"
	TypeOffer             = "offer"
	TypeAnswer            = "answer"
	TypeCandidate         = "candidate"
	TypeLeave             = "leave"
	TypeLayerHint         = "layer_hint"
	TypeParticipantJoined = "participant_joined"
	TypeParticipantLeft   = "participant_left"
	TypeLayers            = "layers"
	TypeError             = "error"
)

// CandidateInit is an RTCIceCandidateInit as the browser serialises it.
type CandidateInit struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// ClientMessage is one client→server message. Pointer fields tell "absent"
// from "empty", so that the server can refuse a field foreign to the type;
// build one with Join, Offer, Answer, Candidate, LayerHint or Leave.
type ClientMessage struct {
	Type      string         `json:"type"`
	Token     *string        `json:"token,omitempty"`
	Visit     *string        `json:"visit,omitempty"`
	SDP       *string        `json:"sdp,omitempty"`
	Candidate *CandidateInit `json:"candidate,omitempty"`
	Track     *string        `json:"track,omitempty"`
	Width     *int           `json:"width,omitempty"`
	Height    *int           `json:"height,omitempty"`
}

// Join is the first message on a socket.
func Join(token string, visit ids.VisitID) ClientMessage {
	v := string(visit)
	return ClientMessage{Type: TypeJoin, Token: &token, Visit: &v}
}

// Offer is the client's one offer.
func Offer(sdp string) ClientMessage { return ClientMessage{Type: TypeOffer, SDP: &sdp} }

// Answer answers a server offer.
func Answer(sdp string) ClientMessage { return ClientMessage{Type: TypeAnswer, SDP: &sdp} }

// Candidate trickles one local ICE candidate.
func Candidate(c CandidateInit) ClientMessage {
	return ClientMessage{Type: TypeCandidate, Candidate: &c}
}

// LayerHint tells the server the size at which a remote track is shown
// (0×0: not shown).
func LayerHint(track string, width, height int) ClientMessage {
	return ClientMessage{Type: TypeLayerHint, Track: &track, Width: &width, Height: &height}
}

// Leave ends the client's participation; the server closes with 1000.
func Leave() ClientMessage { return ClientMessage{Type: TypeLeave} }

// Participant is the participant object of the protocol. Role is
// "patient", "caregiver", "interpreter" or "provider": recorders are never
// announced.
type Participant struct {
	ID   ids.ParticipantID `json:"id"`
	Role string            `json:"role"`
}

// ServerMessage is one server→client message other than joined and
// layers; unused fields are omitted.
type ServerMessage struct {
	Type         string         `json:"type"`
	Self         *Participant   `json:"self,omitempty"`
	Participants []Participant  `json:"participants,omitempty"`
	Participant  *Participant   `json:"participant,omitempty"`
	SDP          string         `json:"sdp,omitempty"`
	Candidate    *CandidateInit `json:"candidate,omitempty"`
	Code         Code           `json:"code,omitempty"`
	Message      string         `json:"message,omitempty"`
}

// JoinedMessage is sent with its participants array always present (even
// empty), which omitempty on ServerMessage would drop.
type JoinedMessage struct {
	Type         string        `json:"type"`
	Self         Participant   `json:"self"`
	Participants []Participant `json:"participants"`
}

// LayersMessage tells a publisher which simulcast layers of one of its
// tracks to stop sending: the full set (so it is idempotent), paused
// always present, empty when every layer is to be sent.
type LayersMessage struct {
	Type   string   `json:"type"`
	Mid    string   `json:"mid"`    // the publisher's m-section of the track
	Paused []string `json:"paused"` // RIDs, lowest layer first
}
