package client_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/client"
	"github.com/openvisit/openvisit/sfu/protocol"
	"github.com/openvisit/openvisit/sfu/sfutest"
)

// params are the Params of a new patient joining visit on n, with a token
// for tokenVisit.
func params(t *testing.T, n *sfutest.Node, visit, tokenVisit ids.VisitID) client.Params {
	t.Helper()
	tok, err := n.Mint(tokenVisit, token.RolePatient)
	if err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	sfutest.Loopback(&se)
	return client.Params{URL: n.URL, Token: tok, Visit: visit, API: webrtc.NewAPI(webrtc.WithSettingEngine(se))}
}

func TestJoinRefused(t *testing.T) {
	n := sfutest.NewNode(t)
	_, err := client.Join(context.Background(), params(t, n, ids.NewVisitID(), ids.NewVisitID()))
	if !errors.Is(err, client.ErrRefused) || !strings.Contains(err.Error(), string(protocol.CodeTokenWrongVisit)) {
		t.Fatalf("join with another visit's token: %v, want refused with %s", err, protocol.CodeTokenWrongVisit)
	}
}

// publisher joins visit, publishes one audio track and counts the packets
// of the tracks it receives.
type publisher struct {
	conn     *client.Conn
	received atomic.Int64
	msgs     chan client.Message
	stop     chan struct{}
}

func join(t *testing.T, n *sfutest.Node, visit ids.VisitID) *publisher {
	t.Helper()
	p := &publisher{msgs: make(chan client.Message, 16), stop: make(chan struct{})}
	params := params(t, n, visit, visit)
	params.Handlers = client.Handlers{
		OnTrack: func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				p.received.Add(1)
			}
		},
		OnMessage: func(m client.Message) { p.msgs <- m },
		OnError:   func(err error) { t.Logf("signaling: %v", err) },
	}
	conn, err := client.Join(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	p.conn = conn
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "mic")
	if _, err := conn.PC().AddTrack(audio); err != nil {
		t.Fatal(err)
	}
	if err := conn.Offer(); err != nil {
		t.Fatal(err)
	}
	conn.Start()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				_ = audio.WriteSample(media.Sample{Data: make([]byte, 80), Duration: 20 * time.Millisecond})
			}
		}
	}()
	t.Cleanup(func() { close(p.stop); p.conn.Close() })
	return p
}

// TestCall: two clients each receive the other's track through the
// server's renegotiation; the first is told of the second; leaving ends
// the socket with 1000.
func TestCall(t *testing.T) {
	n := sfutest.NewNode(t)
	visit := ids.NewVisitID()
	a := join(t, n, visit)
	b := join(t, n, visit)
	if got := b.conn.Participants(); len(got) != 1 || got[0].ID != a.conn.Self().ID {
		t.Fatalf("b joined with participants %+v, want a (%s)", got, a.conn.Self().ID)
	}
	select {
	case m := <-a.msgs:
		if m.Type != protocol.TypeParticipantJoined || m.Participant == nil || m.Participant.ID != b.conn.Self().ID {
			t.Fatalf("a got %+v, want participant_joined of b", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no participant_joined")
	}
	deadline := time.Now().Add(20 * time.Second)
	for a.received.Load() < 10 || b.received.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("received a %d, b %d packets", a.received.Load(), b.received.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.conn.Leave(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.conn.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the node did not close the socket after leave")
	}
	if code := b.conn.CloseCode(); code != protocol.CloseNormal {
		t.Fatalf("close code %d after leave, want %d", code, protocol.CloseNormal)
	}
}

func TestDecodeLenient(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		want      client.Message
	}{
		{"unknown type", `{"type":"future","x":1}`, client.Message{ServerMessage: protocol.ServerMessage{Type: "future"}}},
		{"unknown field", `{"type":"answer","sdp":"v=0","extra":true}`, client.Message{ServerMessage: protocol.ServerMessage{Type: "answer", SDP: "v=0"}}},
		{"layers", `{"type":"layers","mid":"1","paused":["h","f"]}`, client.Message{ServerMessage: protocol.ServerMessage{Type: "layers"}, Mid: "1", Paused: []string{"h", "f"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := client.Decode([]byte(tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != tc.want.Type || m.SDP != tc.want.SDP || m.Mid != tc.want.Mid || strings.Join(m.Paused, ",") != strings.Join(tc.want.Paused, ",") {
				t.Fatalf("decoded %+v, want %+v", m, tc.want)
			}
		})
	}
	if _, err := client.Decode([]byte(`{"type":`)); err == nil {
		t.Fatal("a truncated message decoded")
	}
}

// FuzzDecode: whatever a node sends, decoding never panics, and what it
// accepts re-encodes.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"joined","self":{"id":"a","role":"patient"},"participants":[]}`,
		`{"type":"offer","sdp":"v=0\r\n"}`,
		`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"layers","mid":"1","paused":[]}`,
		`{"type":"error","code":"removed","message":"removed from the visit"}`,
		`null`, `[]`, `{}`, `{"type":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := client.Decode(b)
		if err != nil {
			return
		}
		_ = m.Layers()
	})
}
