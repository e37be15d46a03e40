// Package client is a Pion participant of the SFU's signaling protocol
// (sfu/PROTOCOL.md): it dials a media node, joins, makes the one client
// offer, trickles candidates both ways and answers the server's offers.
// The recorder, the load generator and the tests all join through it;
// what each publishes and does with the tracks it receives is theirs.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// Defaults for Params.
const (
	defaultHandshake   = 10 * time.Second
	defaultJoinTimeout = 10 * time.Second
	writeWait          = 10 * time.Second
	closeWait          = time.Second
)

// ErrRefused: the node answered the join with an error (its code is in
// the message) or with something other than joined.
var ErrRefused = errors.New("client: join refused")

// Params configure Join.
type Params struct {
	URL   string // the node's WebSocket URL (wss://node/sfu/ws)
	Token string // a join token for Visit on that node
	Visit ids.VisitID
	// Dialer dials the socket; nil: a 10 s handshake and Go's TLS defaults.
	Dialer *websocket.Dialer
	// Header is sent with the WebSocket handshake (an Origin, as a
	// browser sends it); nil: none.
	Header http.Header
	// API makes the PeerConnection (codecs, interceptors, ICE settings);
	// nil: webrtc.NewAPI().
	API    *webrtc.API
	Config webrtc.Configuration
	// JoinTimeout bounds the wait for joined; 0: 10 s.
	JoinTimeout time.Duration
	Handlers
}

// Handlers are the events of a Conn. All but OnTrack run on the socket's
// reader goroutine, one at a time, and must not block for long; OnTrack
// runs on Pion's goroutine for the track, as pc.OnTrack does. Nil ones are
// skipped.
type Handlers struct {
	OnTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)
	// OnAnswer: the node's answer to the client's offer was applied.
	OnAnswer func()
	// OnMessage: a message the client does not handle itself
	// (participant_joined, participant_left, layers, error, and types it
	// does not know). An error message is followed by the close.
	OnMessage func(Message)
	// OnError: a signaling step failed (applying an SDP or a candidate, a
	// malformed message); the connection goes on.
	OnError func(error)
}

// Conn is one participant: a socket and a PeerConnection. Lifecycle: Join
// (socket open, joined, PeerConnection made) → the caller adds its tracks
// to PC → Offer → Start (the reader applies the node's messages until the
// socket ends; Done is closed then) → Close. A closed Conn is not reused.
type Conn struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	pc     *webrtc.PeerConnection
	h      Handlers
	joined protocol.JoinedMessage

	done      chan struct{} // closed when the reader returns
	started   bool          // set by Start; Start and Close are called by the owner, in order
	closeCode int           // set before done is closed
	once      sync.Once
}

// Join dials p.URL, joins p.Visit with p.Token and makes the PeerConnection,
// which sends its ICE candidates to the node from then on.
func Join(ctx context.Context, p Params) (*Conn, error) {
	d := p.Dialer
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: defaultHandshake}
	}
	ws, resp, err := d.DialContext(ctx, p.URL, p.Header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	c := &Conn{ws: ws, h: p.Handlers, done: make(chan struct{})}
	if err := c.join(p); err != nil {
		ws.Close()
		return nil, err
	}
	api := p.API
	if api == nil {
		api = webrtc.NewAPI()
	}
	if c.pc, err = api.NewPeerConnection(p.Config); err != nil {
		ws.Close()
		return nil, err
	}
	c.pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			_ = c.Send(protocol.Candidate(candidateInit(cand.ToJSON())))
		}
	})
	if p.OnTrack != nil {
		c.pc.OnTrack(p.OnTrack)
	}
	return c, nil
}

// join sends join and reads joined.
func (c *Conn) join(p Params) error {
	if err := c.Send(protocol.Join(p.Token, p.Visit)); err != nil {
		return fmt.Errorf("client: join: %w", err)
	}
	wait := p.JoinTimeout
	if wait == 0 {
		wait = defaultJoinTimeout
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		return fmt.Errorf("client: join: %w", err)
	}
	var m struct {
		protocol.JoinedMessage
		Code protocol.Code `json:"code"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Type != protocol.TypeJoined {
		return fmt.Errorf("%w: %s", ErrRefused, m.Code)
	}
	c.joined = m.JoinedMessage
	_ = c.ws.SetReadDeadline(time.Time{})
	return nil
}

// PC is the PeerConnection: add tracks or transceivers to it before Offer.
func (c *Conn) PC() *webrtc.PeerConnection { return c.pc }

// Self is the participant the node admitted.
func (c *Conn) Self() protocol.Participant { return c.joined.Self }

// Participants are the others who were in the room at join.
func (c *Conn) Participants() []protocol.Participant { return c.joined.Participants }

// Offer makes and sends the client's one offer, with the tracks and
// transceivers added to PC so far.
func (c *Conn) Offer() error {
	offer, err := c.pc.CreateOffer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(offer)
	}
	if err != nil {
		return fmt.Errorf("client: offer: %w", err)
	}
	return c.Send(protocol.Offer(offer.SDP))
}

// Send writes one message (safe from any goroutine).
func (c *Conn) Send(m protocol.ClientMessage) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteJSON(m)
}

// Start runs the reader: it applies the node's answers, offers and
// candidates and passes the rest to the handlers until the socket ends.
// Call it once, after Offer. Before Start, Read may be used instead.
func (c *Conn) Start() {
	c.started = true
	go c.read()
}

// Done is closed when the reader has returned: the socket ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseCode is the close code the node ended the socket with: 0 while it is
// open, or when it broke without a close frame. Valid once Done is closed.
func (c *Conn) CloseCode() int {
	select {
	case <-c.done:
		return c.closeCode
	default:
		return 0
	}
}

// Read reads the next message without applying it, for a caller that
// drives the protocol itself (tests); not with Start. A socket the node
// closed gives an error for which CloseCodeOf returns the code.
func (c *Conn) Read() (Message, error) {
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		return Message{}, err
	}
	return Decode(b)
}

// SetReadDeadline bounds the Reads to come (for a caller that uses Read);
// the zero time: no bound.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// CloseCodeOf returns the close code in err (from Read), or 0.
func CloseCodeOf(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// Leave tells the node the participant leaves; the node then closes the
// socket with 1000 (Done).
func (c *Conn) Leave() error { return c.Send(protocol.Leave()) }

// Close closes the PeerConnection and the socket (with a close frame) and
// waits for the reader. It does not send leave; it may be called again.
func (c *Conn) Close() {
	c.once.Do(func() {
		_ = c.pc.Close()
		c.wmu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeWait))
		c.wmu.Unlock()
		_ = c.ws.Close()
		if c.started {
			<-c.done
		}
	})
}

// Abort closes the socket at once, without leave or a close frame (as a
// page that crashes); the reader ends. Close still has to be called.
func (c *Conn) Abort() { _ = c.ws.Close() }

func candidateInit(c webrtc.ICECandidateInit) protocol.CandidateInit {
	return protocol.CandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid,
		SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
}
