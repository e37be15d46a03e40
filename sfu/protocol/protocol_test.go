package protocol

import (
	"encoding/json"
	"testing"
)

// TestWireFormat pins the JSON of each message: browsers parse it, so a
// renamed field or a lost omitempty is a protocol change.
func TestWireFormat(t *testing.T) {
	mid, idx := "0", uint16(0)
	self := Participant{ID: "p1", Role: "patient"}
	for _, tc := range []struct {
		name string
		m    any
		want string
	}{
		{"join", Join("tok", "v1"), `{"type":"join","token":"tok","visit":"v1"}`},
		{"offer", Offer("v=0"), `{"type":"offer","sdp":"v=0"}`},
		{"answer", Answer("v=0"), `{"type":"answer","sdp":"v=0"}`},
		{"candidate", Candidate(CandidateInit{Candidate: "c", SDPMid: &mid, SDPMLineIndex: &idx}),
			`{"type":"candidate","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}`},
		{"layer_hint", LayerHint("video-3", 0, 0), `{"type":"layer_hint","track":"video-3","width":0,"height":0}`},
		{"leave", Leave(), `{"type":"leave"}`},
		{"joined alone", JoinedMessage{Type: TypeJoined, Self: self, Participants: []Participant{}},
			`{"type":"joined","self":{"id":"p1","role":"patient"},"participants":[]}`},
		{"participant_joined", ServerMessage{Type: TypeParticipantJoined, Participant: &self},
			`{"type":"participant_joined","participant":{"id":"p1","role":"patient"}}`},
		{"server offer", ServerMessage{Type: TypeOffer, SDP: "v=0"}, `{"type":"offer","sdp":"v=0"}`},
		{"error", ServerMessage{Type: TypeError, Code: CodeRemoved, Message: CodeRemoved.Text()},
			`{"type":"error","code":"removed","message":"removed from the visit"}`},
		{"layers none paused", LayersMessage{Type: TypeLayers, Mid: "1", Paused: []string{}},
			`{"type":"layers","mid":"1","paused":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

func TestCloseCodes(t *testing.T) {
	for _, tc := range []struct {
		code  Code
		close int
	}{
		{CodeTokenInvalid, 4001}, {CodeTokenWrongNode, 4003}, {CodeJoinTimeout, 4008},
		{CodeBadMessage, 4000}, {CodeRemoved, 4010}, {CodeDuplicate, 4009},
		{CodeUnavailable, 1013}, {CodeRateLimited, 4029}, {CodeTooManyTracks, 4013},
		{CodeInternal, 1011}, {"unknown", 1011},
	} {
		if got := tc.code.CloseCode(); got != tc.close {
			t.Errorf("%s: close %d, want %d", tc.code, got, tc.close)
		}
	}
	if Code("unknown").Text() != CodeInternal.Text() {
		t.Error("an unknown code does not read as internal")
	}
}
