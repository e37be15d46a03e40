package client

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/sfu/protocol"
)

// Message is one server message as a client reads it: the fields of every
// server→client type (layers adds mid and paused to the common ones).
type Message struct {
	protocol.ServerMessage
	Mid    string   `json:"mid"`
	Paused []string `json:"paused"`
}

// Layers returns m as a layers message.
func (m Message) Layers() protocol.LayersMessage {
	return protocol.LayersMessage{Type: m.Type, Mid: m.Mid, Paused: m.Paused}
}

// Errors passed to Handlers.OnError.
var (
	// ErrCandidate: a node's candidate could not be applied; the protocol
	// makes that harmless (other candidates may work).
	ErrCandidate = errors.New("client: add candidate")
	// errMalformed: the node sent something that is not a JSON object.
	errMalformed = errors.New("client: malformed server message")
)

// Decode parses one server message. It is lenient, as PROTOCOL.md asks of
// clients: unknown fields are ignored and unknown types are returned for
// the caller to ignore, so that the server can add messages.
func Decode(b []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, errMalformed
	}
	return m, nil
}

// read is the socket's reader (Start): it applies SDP and candidates and
// hands the rest on, until the socket ends.
func (c *Conn) read() {
	defer close(c.done)
	for {
		m, err := c.Read()
		if errors.Is(err, errMalformed) {
			c.fail(err)
			continue
		}
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.closeCode = ce.Code
			}
			return
		}
		c.apply(m)
	}
}

// apply acts on one message from the node.
func (c *Conn) apply(m Message) {
	switch m.Type {
	case protocol.TypeAnswer:
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			c.fail(fmt.Errorf("client: set answer: %w", err))
			return
		}
		if c.h.OnAnswer != nil {
			c.h.OnAnswer()
		}
	case protocol.TypeOffer:
		c.answer(m.SDP)
	case protocol.TypeCandidate:
		if m.Candidate == nil {
			return
		}
		cand := m.Candidate
		init := webrtc.ICECandidateInit{Candidate: cand.Candidate, SDPMid: cand.SDPMid,
			SDPMLineIndex: cand.SDPMLineIndex, UsernameFragment: cand.UsernameFragment}
		if err := c.pc.AddICECandidate(init); err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrCandidate, err))
		}
	default:
		if c.h.OnMessage != nil {
			c.h.OnMessage(m)
		}
	}
}

// answer applies a server offer (renegotiation) and answers it.
func (c *Conn) answer(sdp string) {
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		c.fail(fmt.Errorf("client: set offer: %w", err))
		return
	}
	a, err := c.pc.CreateAnswer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(a)
	}
	if err != nil {
		c.fail(fmt.Errorf("client: answer: %w", err))
		return
	}
	_ = c.Send(protocol.Answer(a.SDP))
}

func (c *Conn) fail(err error) {
	if c.h.OnError != nil {
		c.h.OnError(err)
	}
}
