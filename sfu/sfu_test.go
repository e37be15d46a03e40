package sfu

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/protocol"
)

const testNode = ids.NodeID("node-test")

// testEnv is an SFU behind an httptest server, with a minter for its key.
type testEnv struct {
	sfu    *SFU
	srv    *httptest.Server
	minter *token.Minter
	key    ed25519.PrivateKey
	wsURL  string
	// lastConn is the socket the last helper join made.
	lastConn *websocket.Conn
	// tokenIDs maps a subject to the ID of the last token minted for it
	// (mintFor).
	tokenIDs map[string]string
}

// loopbackOnly makes Pion use loopback candidates only, without mDNS.
func loopbackOnly(se *webrtc.SettingEngine) {
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("SFU_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestEnv(t testing.TB, opts ...func(*Params)) *testEnv {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(pub, testNode, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := token.NewMinter(priv, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	params := Params{
		Node:            testNode,
		Verifier:        v,
		Burner:          token.NewMemoryBurner(1000, nil),
		Origins:         []string{"https://localhost:8443"},
		Logger:          testLogger(t),
		UDPAddr:         "127.0.0.1:0",
		ConfigureWebRTC: loopbackOnly,
	}
	for _, o := range opts {
		o(&params)
	}
	s, err := New(params)
	if err != nil {
		t.Fatal(err)
	}
	s.joinTimeout = 300 * time.Millisecond
	srv := httptest.NewServer(s)
	env := &testEnv{sfu: s, srv: srv, minter: m, key: priv, wsURL: "ws" + strings.TrimPrefix(srv.URL, "http")}
	t.Cleanup(env.close)
	return env
}

func (e *testEnv) close() {
	if e.sfu == nil {
		return
	}
	_ = e.sfu.Close()
	e.srv.Close()
	e.sfu = nil
}

func (e *testEnv) mint(t *testing.T, visit ids.VisitID, role token.Role) (string, token.Claims) {
	t.Helper()
	tok, c, err := e.minter.Mint(token.Grant{
		Visit: visit, Participant: ids.NewParticipantID(), Role: role, Subject: "user-1", Node: testNode,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

func (e *testEnv) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(e.wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

func writeJSON(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	if err := c.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}

func join(t *testing.T, c *websocket.Conn, tok string, visit ids.VisitID) {
	t.Helper()
	writeJSON(t, c, protocol.Join(tok, visit))
}

// readMsg reads one server message, failing the test on a read error.
func readMsg(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

// expectClose reads until the socket closes and returns the close code.
func expectClose(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("socket ended without a close frame: %v", err)
	}
}

// expectError reads an error message with code, then a close with closeCode.
func expectError(t *testing.T, c *websocket.Conn, code protocol.Code, wantClose int) {
	t.Helper()
	m := readMsg(t, c)
	if m["type"] != "error" || m["code"] != string(code) {
		t.Fatalf("got %v, want error %s", m, code)
	}
	if got := expectClose(t, c); got != wantClose {
		t.Fatalf("close code %d, want %d", got, wantClose)
	}
}

func TestJoinTokenRejected(t *testing.T) {
	env := newTestEnv(t)
	visit := ids.NewVisitID()
	for _, tc := range rejectedJoins() {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.open(t, env, visit)
			if tc.code == "" {
				if got := expectClose(t, c); got != tc.close {
					t.Fatalf("close code %d, want %d", got, tc.close)
				}
				return
			}
			expectError(t, c, tc.code, tc.close)
		})
	}
	t.Run("still serving", func(t *testing.T) {
		tok, c0 := env.mint(t, visit, token.RoleProvider)
		c := env.dial(t)
		join(t, c, tok, visit)
		m := readMsg(t, c)
		if m["type"] != "joined" {
			t.Fatalf("got %v, want joined", m)
		}
		self, _ := m["self"].(map[string]any)
		if self["id"] != string(c0.Participant) || self["role"] != "provider" {
			t.Fatalf("self = %v", self)
		}
	})
}

// rejectedJoin is a socket whose first messages (open dials it and sends
// them) the node refuses with an error message code ("": none) and a
// close with close.
type rejectedJoin struct {
	name  string
	open  func(t *testing.T, env *testEnv, visit ids.VisitID) *websocket.Conn
	code  protocol.Code
	close int
}

func rejectedJoins() []rejectedJoin {
	return []rejectedJoin{
		{"expired", joinWith(expiredToken), protocol.CodeTokenExpired, 4001},
		{"reused", joinWith(usedToken), protocol.CodeTokenUsed, 4001},
		{"forged", joinWith(forgedToken), protocol.CodeTokenInvalid, 4001},
		{"other visit", func(t *testing.T, env *testEnv, visit ids.VisitID) *websocket.Conn {
			tok, _ := env.mint(t, visit, token.RolePatient)
			c := env.dial(t)
			join(t, c, tok, ids.NewVisitID())
			return c
		}, protocol.CodeTokenWrongVisit, 4003},
		{"other node", joinWith(otherNodeToken), protocol.CodeTokenWrongNode, 4003},
		{"not join first", func(t *testing.T, env *testEnv, _ ids.VisitID) *websocket.Conn {
			c := env.dial(t)
			writeJSON(t, c, protocol.Leave())
			return c
		}, protocol.CodeBadMessage, 4000},
		{"unknown field", func(t *testing.T, env *testEnv, visit ids.VisitID) *websocket.Conn {
			tok, _ := env.mint(t, visit, token.RolePatient)
			c := env.dial(t)
			writeJSON(t, c, map[string]string{"type": "join", "token": tok, "visit": string(visit), "name": "x"})
			return c
		}, protocol.CodeBadMessage, 4000},
		{"join timeout", func(t *testing.T, env *testEnv, _ ids.VisitID) *websocket.Conn {
			return env.dial(t)
		}, protocol.CodeJoinTimeout, 4008},
		{"oversized", func(t *testing.T, env *testEnv, _ ids.VisitID) *websocket.Conn {
			c := env.dial(t)
			big := `{"type":"join","token":"` + strings.Repeat("a", maxMessage+1024) + `"}`
			if err := c.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
				t.Fatal(err)
			}
			return c
		}, "", websocket.CloseMessageTooBig},
	}
}

// joinWith opens a socket that joins visit with the token mint makes.
func joinWith(mint func(t *testing.T, env *testEnv, visit ids.VisitID) string) func(*testing.T, *testEnv, ids.VisitID) *websocket.Conn {
	return func(t *testing.T, env *testEnv, visit ids.VisitID) *websocket.Conn {
		tok := mint(t, env, visit)
		c := env.dial(t)
		join(t, c, tok, visit)
		return c
	}
}

// expiredToken is a patient token for visit that expired an hour ago.
func expiredToken(t *testing.T, env *testEnv, visit ids.VisitID) string {
	old, err := token.NewMinter(env.key, time.Minute, func() time.Time { return time.Now().Add(-time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	return patientToken(t, old, visit, testNode)
}

// usedToken is a patient token for visit that joined and left.
func usedToken(t *testing.T, env *testEnv, visit ids.VisitID) string {
	tok, _ := env.mint(t, visit, token.RolePatient)
	c := env.dial(t)
	join(t, c, tok, visit)
	if m := readMsg(t, c); m["type"] != "joined" {
		t.Fatalf("first join: got %v", m)
	}
	writeJSON(t, c, protocol.Leave())
	if got := expectClose(t, c); got != websocket.CloseNormalClosure {
		t.Fatalf("leave: close %d", got)
	}
	return tok
}

// forgedToken is a patient token for visit signed with another key.
func forgedToken(t *testing.T, _ *testEnv, visit ids.VisitID) string {
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	m, err := token.NewMinter(other, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	return patientToken(t, m, visit, testNode)
}

// otherNodeToken is a patient token for visit on another media node.
func otherNodeToken(t *testing.T, env *testEnv, visit ids.VisitID) string {
	return patientToken(t, env.minter, visit, "node-other")
}

// patientToken mints a token for a new patient of visit on node with m.
func patientToken(t *testing.T, m *token.Minter, visit ids.VisitID, node ids.NodeID) string {
	t.Helper()
	tok, _, err := m.Mint(token.Grant{Visit: visit, Participant: ids.NewParticipantID(), Role: token.RolePatient, Node: node})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestOriginRefused(t *testing.T) {
	env := newTestEnv(t)
	for _, tc := range []struct {
		name    string
		origins []string
		status  int
	}{
		{"foreign origin", []string{"https://evil.example"}, http.StatusForbidden},
		{"two origins", []string{"https://localhost:8443", "https://evil.example"}, http.StatusForbidden},
		{"allowed origin", []string{"https://localhost:8443"}, http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, o := range tc.origins {
				h.Add("Origin", o)
			}
			c, resp, err := websocket.DefaultDialer.Dial(env.wsURL, h)
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

func TestOfferWithoutFingerprint(t *testing.T) {
	env := newTestEnv(t)
	visit := ids.NewVisitID()
	tok, _ := env.mint(t, visit, token.RolePatient)
	c := env.dial(t)
	join(t, c, tok, visit)
	if m := readMsg(t, c); m["type"] != "joined" {
		t.Fatalf("got %v", m)
	}
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(offer.SDP, "\r\n") {
		if !strings.HasPrefix(l, "a=fingerprint:") {
			kept = append(kept, l)
		}
	}
	writeJSON(t, c, protocol.Offer(strings.Join(kept, "\r\n")))
	expectError(t, c, protocol.CodeBadSDP, 4000)
}

func TestCheckSDP(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
	const fp = "a=fingerprint:sha-256 AB:CD\r\n"
	const media = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
	for _, tc := range []struct {
		name string
		sdp  string
		ok   bool
	}{
		{"session fingerprint", head + fp + media, true},
		{"media fingerprint", head + media + fp, true},
		{"none", head + media, false},
		{"one media without", head + media + fp + media, false},
		{"no media", head, false},
		{"garbage", "hello", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkSDP(tc.sdp); (err == nil) != tc.ok {
				t.Fatalf("checkSDP = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","token":"abc.def","visit":"6f1c2b7e-8d43-4c1a-9b7e-2f0e5c9a1d34"}`,
		`{"type":"offer","sdp":"v=0\r\n"}`,
		`{"type":"answer","sdp":"v=0\r\n"}`,
		`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}`,
		`{"type":"candidate","candidate":{"candidate":""}}`,
		`{"type":"leave"}`,
		`{"type":"leave","sdp":"x"}`,
		`{"type":"join"}`,
		`null`, `[]`, `{}`, `{"type":"leave"} {}`,
		`{"type":"layer_hint","track":"video-3","width":320,"height":180}`,
		`{"type":"layer_hint","track":"video-3","width":0,"height":0}`,
		`{"type":"layer_hint","track":"video-3","width":-1,"height":180}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			if !errors.Is(err, errBadMessage) {
				t.Fatalf("error %v does not map to bad_message", err)
			}
			return
		}
		// Whatever is accepted respects the limits and its type's shape.
		switch m.Type {
		case protocol.TypeJoin:
			if len(*m.Token) > token.MaxLen || !ids.Valid(*m.Visit) || m.SDP != nil {
				t.Fatalf("join out of limits: %+v", m)
			}
		case protocol.TypeOffer, protocol.TypeAnswer:
			if len(*m.SDP) > maxSDP || m.Token != nil {
				t.Fatalf("sdp out of limits")
			}
		case protocol.TypeCandidate:
			if len(m.Candidate.Candidate) > maxCandidate {
				t.Fatalf("candidate out of limits")
			}
		case protocol.TypeLeave:
			if m.Token != nil || m.SDP != nil || m.Candidate != nil || m.Visit != nil {
				t.Fatalf("leave with fields")
			}
		case protocol.TypeLayerHint:
			if len(*m.Track) == 0 || len(*m.Track) > maxTrackID || *m.Width < 0 || *m.Width > maxDimension ||
				*m.Height < 0 || *m.Height > maxDimension || m.SDP != nil {
				t.Fatalf("layer_hint out of limits: %+v", m)
			}
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
		// Re-encoding and decoding again gives the same message.
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeMessage(b); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
