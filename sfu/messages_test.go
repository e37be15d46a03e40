package sfu

import (
	"encoding/json"
	"testing"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// TestProtocolMessagesDecode: what package protocol builds for clients
// passes the server's strict decoder.
func TestProtocolMessagesDecode(t *testing.T) {
	mid, idx, ufrag := "0", uint16(0), "abcd"
	for _, m := range []protocol.ClientMessage{
		protocol.Join("abc.def", ids.NewVisitID()),
		protocol.Offer("v=0\r\n"),
		protocol.Answer("v=0\r\n"),
		protocol.Candidate(protocol.CandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: &mid, SDPMLineIndex: &idx, UsernameFragment: &ufrag}),
		protocol.Candidate(protocol.CandidateInit{}),
		protocol.LayerHint("video-3", 320, 180),
		protocol.LayerHint("video-3", 0, 0),
		protocol.Leave(),
	} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeMessage(b); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
}
