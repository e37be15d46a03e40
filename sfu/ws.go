package sfu

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// Socket timings (PROTOCOL.md).
const (
	joinTimeout = 10 * time.Second
	pingEvery   = 15 * time.Second
	pongWait    = 45 * time.Second
	writeWait   = 10 * time.Second
	// lingerWait bounds how long a closing socket is drained, so that the
	// close frame reaches the client instead of a TCP reset.
	lingerWait = time.Second
	burnWait   = 5 * time.Second
	sendQueue  = 64
)

// closeReason is how a socket ends: with an error message and that code's
// close code, or (code empty) with a bare close code.
type closeReason struct {
	code  protocol.Code
	close int
}

func (c closeReason) closeCode() int {
	if c.code != "" {
		return c.code.CloseCode()
	}
	return c.close
}

// wsConn is one client socket. The handler goroutine reads; one writer
// goroutine writes, as gorilla allows one concurrent writer. Other
// goroutines only queue messages (send) or end the socket (kick).
type wsConn struct {
	c     *websocket.Conn
	out   chan any
	quit  chan struct{} // closed by the handler to stop the writer
	wdone chan struct{} // closed when the writer has returned

	mu     sync.Mutex
	reason *closeReason // set once by kick
}

func newWSConn(c *websocket.Conn) *wsConn {
	return &wsConn{
		c:     c,
		out:   make(chan any, sendQueue),
		quit:  make(chan struct{}),
		wdone: make(chan struct{}),
	}
}

// send queues m without blocking. A client that does not read its messages
// fills the queue and is disconnected rather than stalling the room.
func (w *wsConn) send(m any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason != nil {
		return
	}
	select {
	case w.out <- m:
	default:
		w.kickLocked(closeReason{close: protocol.CloseGoingAway})
	}
}

// kick ends the socket with why (the first reason wins). It never blocks:
// it unblocks the reader, which then closes the socket.
func (w *wsConn) kick(why closeReason) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kickLocked(why)
}

func (w *wsConn) kickLocked(why closeReason) {
	if w.reason != nil {
		return
	}
	w.reason = &why
	_ = w.c.NetConn().SetReadDeadline(time.Now())
}

// setReadDeadline moves the read deadline unless the socket was kicked,
// whose deadline (now) must stand.
func (w *wsConn) setReadDeadline(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason == nil {
		_ = w.c.NetConn().SetReadDeadline(time.Now().Add(d))
	}
}

func (w *wsConn) kicked() *closeReason {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}

// writer sends queued messages and pings until quit; then it flushes what
// was queued before returning.
func (w *wsConn) writer() {
	defer close(w.wdone)
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case m := <-w.out:
			if err := w.write(m); err != nil {
				w.kick(closeReason{close: protocol.CloseGoingAway})
				w.drop()
				return
			}
		case <-ping.C:
			if err := w.c.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				w.kick(closeReason{close: protocol.CloseGoingAway})
				w.drop()
				return
			}
		case <-w.quit:
			for {
				select {
				case m := <-w.out:
					if w.write(m) != nil {
						w.drop()
						return
					}
				default:
					return
				}
			}
		}
	}
}

// drop empties the queue after a write failure until quit.
func (w *wsConn) drop() {
	for {
		select {
		case <-w.out:
		case <-w.quit:
			return
		}
	}
}

func (w *wsConn) write(m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_ = w.c.SetWriteDeadline(time.Now().Add(writeWait))
	return w.c.WriteMessage(websocket.TextMessage, b)
}

// checkOrigin allows a request without Origin (not a browser: the recorder,
// tests) and a browser only from a configured origin.
func (s *SFU) checkOrigin(r *http.Request) bool {
	o := r.Header.Values("Origin")
	switch len(o) {
	case 0:
		return true
	case 1:
		return s.origins[strings.ToLower(o[0])]
	}
	return false
}

// ServeHTTP is the WebSocket endpoint (/sfu/ws).
func (s *SFU) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "media node shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the client
	}
	ws := newWSConn(c)
	s.mu.Lock()
	s.conns[ws] = struct{}{}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		ws.kick(closeReason{close: protocol.CloseGoingAway})
	}
	defer func() {
		s.mu.Lock()
		delete(s.conns, ws)
		s.mu.Unlock()
	}()
	s.serveConn(ws)
}

// serveConn runs one socket to its end: join, then messages, then the close
// sequence. It is the socket's reader.
func (s *SFU) serveConn(ws *wsConn) {
	var p *participant
	var end closeReason
	var clientClosed, readLimit bool
	lim := newMsgLimiter(&s.wsStats.messages)
	defer func() {
		if v := recover(); v != nil {
			// A bug, not an input: log it and still close cleanly.
			s.log.Error("sfu: panic in socket handler", "panic", v)
			end = closeReason{code: protocol.CodeInternal}
		}
		if end.code == protocol.CodeRateLimited {
			s.noteRateLimited(p)
		}
		if p != nil {
			p.leave()
			p.log.Debug("socket closed", "messages", lim.n)
		}
		close(ws.quit)
		<-ws.wdone
		s.closeSocket(ws, end, clientClosed, readLimit)
	}()

	c := ws.c
	c.SetReadLimit(maxMessage)
	var joined atomic.Bool
	watchControlFrames(ws, lim, &joined)
	go ws.writer()

	ws.setReadDeadline(s.joinTimeout)
	var err error
	p, err = s.awaitJoin(ws, lim)
	if err != nil {
		end, clientClosed, readLimit = s.readEnd(ws, err, true)
		return
	}
	joined.Store(true)
	ws.setReadDeadline(pongWait)
	for {
		m, err := readMessage(c, lim)
		if err != nil {
			end, clientClosed, readLimit = s.readEnd(ws, err, false)
			return
		}
		if ws.kicked() != nil {
			end, _, _ = s.readEnd(ws, nil, false)
			return
		}
		ws.setReadDeadline(pongWait)
		if err := p.handle(m); err != nil {
			end = s.errorEnd(p, err)
			return
		}
	}
}

// errorEnd turns a handler error into the socket's end.
func (s *SFU) errorEnd(p *participant, err error) closeReason {
	if errors.Is(err, errLeave) {
		return closeReason{close: protocol.CloseNormal}
	}
	var pe *protoError
	if errors.As(err, &pe) {
		if pe.code == protocol.CodeInternal {
			p.log.Error("signaling failed", "err", err)
		} else {
			p.log.Info("client error", "code", string(pe.code))
			p.log.Debug("client error detail", "err", err)
		}
		return closeReason{code: pe.code}
	}
	p.log.Error("signaling failed", "err", err)
	return closeReason{code: protocol.CodeInternal}
}

// readEnd classifies why reading stopped. A kick wins over the read error
// it caused.
func (s *SFU) readEnd(ws *wsConn, err error, beforeJoin bool) (end closeReason, clientClosed, readLimit bool) {
	if r := ws.kicked(); r != nil {
		return *r, false, false
	}
	var pe *protoError
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		return closeReason{code: pe.code}, false, false
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent close 1009.
		return closeReason{}, false, true
	case errors.As(err, &ce):
		return closeReason{}, true, false
	case errors.As(err, &ne) && ne.Timeout():
		if beforeJoin {
			return closeReason{code: protocol.CodeJoinTimeout}, false, false
		}
		return closeReason{close: protocol.CloseGoingAway}, false, false // no pong in time
	}
	return closeReason{}, true, false // the connection broke
}

// closeSocket sends the error message and close frame (the writer has
// stopped, so this goroutine may write), then drains what the client still
// sends for a moment, so that the kernel does not answer it with a reset
// that would destroy the close frame in flight, and closes.
func (s *SFU) closeSocket(ws *wsConn, end closeReason, clientClosed, readLimit bool) {
	c := ws.c
	if !clientClosed && !readLimit && end.closeCode() != 0 {
		_ = c.SetWriteDeadline(time.Now().Add(writeWait))
		if end.code != "" {
			b, _ := json.Marshal(protocol.ServerMessage{Type: protocol.TypeError, Code: end.code, Message: end.code.Text()})
			_ = c.WriteMessage(websocket.TextMessage, b)
		}
		_ = c.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(end.closeCode(), string(end.code)), time.Now().Add(writeWait))
	}
	nc := c.NetConn()
	if !clientClosed {
		_ = nc.SetReadDeadline(time.Now().Add(lingerWait))
		_, _ = io.Copy(io.Discard, nc)
	}
	_ = nc.Close()
}

// watchControlFrames counts the client's pings and pongs against its
// message budget (a ping flood would otherwise make the server write a pong
// for each, unseen by the reader's loop). A pong after join moves the read
// deadline, as any sign of life does.
func watchControlFrames(ws *wsConn, lim *msgLimiter, joined *atomic.Bool) {
	c := ws.c
	c.SetPingHandler(func(data string) error {
		if err := lim.allow(); err != nil {
			return err
		}
		// As gorilla's default handler: a pong that cannot be written is
		// not the reader's error.
		err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
			return nil
		}
		return err
	})
	c.SetPongHandler(func(string) error {
		if err := lim.allow(); err != nil {
			return err
		}
		if joined.Load() {
			ws.setReadDeadline(pongWait)
		}
		return nil
	})
}

// readMessage reads one message, counts it against lim and decodes it.
func readMessage(c *websocket.Conn, lim *msgLimiter) (protocol.ClientMessage, error) {
	t, data, err := c.ReadMessage()
	if err != nil {
		return protocol.ClientMessage{}, err
	}
	if err := lim.allow(); err != nil {
		return protocol.ClientMessage{}, err
	}
	if t != websocket.TextMessage {
		return protocol.ClientMessage{}, fail(protocol.CodeBadMessage, errors.New("binary frame"))
	}
	m, err := decodeMessage(data)
	if err != nil {
		return protocol.ClientMessage{}, fail(protocol.CodeBadMessage, err)
	}
	return m, nil
}

// awaitJoin reads the first message, which must be a valid join, and admits
// the participant.
func (s *SFU) awaitJoin(ws *wsConn, lim *msgLimiter) (*participant, error) {
	m, err := readMessage(ws.c, lim)
	if err != nil {
		return nil, err
	}
	if m.Type != protocol.TypeJoin {
		return nil, fail(protocol.CodeBadMessage, errors.New("first message is not join"))
	}
	claims, err := s.verifier.Verify(*m.Token, ids.VisitID(*m.Visit))
	if err != nil {
		code := tokenCode(err)
		s.log.Info("join refused", "code", string(code))
		return nil, fail(code, err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, burnWait)
	err = s.burner.Burn(ctx, claims)
	cancel()
	if err != nil {
		code := tokenCode(err)
		log := s.log.With("visit", string(claims.Visit), "participant", string(claims.Participant))
		if code == protocol.CodeInternal {
			log.Error("burn join token", "err", err)
		} else {
			log.Info("join refused", "code", string(code))
		}
		return nil, fail(code, err)
	}
	p, err := s.newParticipant(claims, ws)
	if err != nil {
		return nil, fail(protocol.CodeInternal, err)
	}
	if err := s.join(p); err != nil {
		p.leave()
		return nil, fail(protocol.CodeInternal, err)
	}
	p.setMediaState(MediaConnecting)
	p.log.Info("participant joined", "role", string(p.role))
	return p, nil
}
