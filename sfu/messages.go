package sfu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// Limits on what a client may send (PROTOCOL.md). maxMessage is enforced by
// the WebSocket read limit; the others by decodeMessage.
const (
	maxMessage      = 64 << 10
	maxSDP          = 60 << 10
	maxCandidate    = 1024 // an a=candidate line is ~100 bytes
	maxMid          = 64
	maxUfrag        = 256
	maxMLineIndex   = 1024
	maxVisitIDChars = 36 // a canonical UUID
	maxTrackID      = 64
	maxDimension    = 16384 // pixels, per side, in a layer_hint
)

var errBadMessage = errors.New("bad message")

// decodeMessage parses and checks one client message strictly: one JSON
// object, no unknown fields, no fields foreign to its type, bounded lengths.
// Every error it returns maps to bad_message. It must never panic.
func decodeMessage(data []byte) (protocol.ClientMessage, error) {
	var m protocol.ClientMessage
	if len(data) > maxMessage || !utf8.Valid(data) {
		return m, fmt.Errorf("%w: size or encoding", errBadMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		// The decoder's text may quote client input: keep it out of the log.
		return protocol.ClientMessage{}, fmt.Errorf("%w: not one strict JSON object", errBadMessage)
	}
	if _, err := dec.Token(); err != io.EOF {
		return protocol.ClientMessage{}, fmt.Errorf("%w: trailing data", errBadMessage)
	}
	if err := checkClientMessage(&m); err != nil {
		return protocol.ClientMessage{}, fmt.Errorf("%w: %s: %v", errBadMessage, safeType(m.Type), err)
	}
	return m, nil
}

// checkClientMessage checks m's fields against its type.
func checkClientMessage(m *protocol.ClientMessage) error {
	// has reports which optional fields are present, in field order.
	has := [7]bool{m.Token != nil, m.Visit != nil, m.SDP != nil, m.Candidate != nil,
		m.Track != nil, m.Width != nil, m.Height != nil}
	only := func(want [7]bool) error {
		if has != want {
			return errors.New("missing or foreign field")
		}
		return nil
	}
	switch m.Type {
	case protocol.TypeJoin:
		if err := only([7]bool{true, true}); err != nil {
			return err
		}
		if len(*m.Token) == 0 || len(*m.Token) > token.MaxLen {
			return errors.New("token length")
		}
		if len(*m.Visit) > maxVisitIDChars || !ids.Valid(*m.Visit) {
			return errors.New("visit is not an id")
		}
	case protocol.TypeOffer, protocol.TypeAnswer:
		if err := only([7]bool{2: true}); err != nil {
			return err
		}
		if len(*m.SDP) == 0 || len(*m.SDP) > maxSDP {
			return errors.New("sdp length")
		}
	case protocol.TypeCandidate:
		if err := only([7]bool{3: true}); err != nil {
			return err
		}
		c := m.Candidate
		if len(c.Candidate) > maxCandidate ||
			(c.SDPMid != nil && len(*c.SDPMid) > maxMid) ||
			(c.UsernameFragment != nil && len(*c.UsernameFragment) > maxUfrag) ||
			(c.SDPMLineIndex != nil && *c.SDPMLineIndex > maxMLineIndex) {
			return errors.New("candidate field length")
		}
	case protocol.TypeLeave:
		if err := only([7]bool{}); err != nil {
			return err
		}
	case protocol.TypeLayerHint:
		if err := only([7]bool{4: true, 5: true, 6: true}); err != nil {
			return err
		}
		if len(*m.Track) == 0 || len(*m.Track) > maxTrackID {
			return errors.New("track length")
		}
		if *m.Width < 0 || *m.Width > maxDimension || *m.Height < 0 || *m.Height > maxDimension {
			return errors.New("dimension out of range")
		}
	default:
		return errors.New("unknown type")
	}
	return nil
}

// safeType returns t for the log when it is a known type, so that a hostile
// client cannot write arbitrary text into the log.
func safeType(t string) string {
	switch t {
	case protocol.TypeJoin, protocol.TypeOffer, protocol.TypeAnswer, protocol.TypeCandidate, protocol.TypeLeave, protocol.TypeLayerHint:
		return t
	}
	return "unknown"
}
