package signaling

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/chat"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
)

// A visit's chat (internal/chat). Messages reach the pages over the
// visit's event stream (waiting.go): the send's transaction notifies the
// visit, and each stream then sends the messages after the last it sent,
// as `chat` events whose SSE id is the message's sequence number — so a
// browser that reconnects (Last-Event-ID) resumes where it was, in order.
// The stream already runs on every control-plane replica (PostgreSQL
// NOTIFY), survives a media node's loss, and keeps the text away from the
// media nodes, which hold no PHI key.

type chatRequest struct {
	Text string `json:"text"`
}

func (s *Server) chatService() *chat.Service { return chat.New(chat.Params{Env: s.env()}) }

// sendChat stores one message from the caller to everyone in the visit.
func (s *Server) sendChat(c *gin.Context) {
	var req chatRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	visit := ids.VisitID(c.Param("visit_id"))
	m, err := s.chatService().Send(c.Request.Context(), chat.Post{Visit: visit, Sender: principal(c), Text: req.Text,
		Event: s.visitEvent(c, chat.ActionSend, visit)})
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusCreated, m)
}

// chatTranscript answers the visit's messages after ?after= (a sequence
// number; default all), for the provider's visit view afterwards.
func (s *Server) chatTranscript(c *gin.Context) {
	after, ok := ParseChatSeq(c.Query("after"))
	if !ok {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_parameter", "after must be a message sequence number."))
		return
	}
	visit := ids.VisitID(c.Param("visit_id"))
	list, err := s.chatService().Transcript(c.Request.Context(), principal(c), visit, after, s.visitEvent(c, chat.ActionRead, visit))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"messages": list, "max_chars": chat.MaxRunes})
}

// ParseChatSeq reads a message sequence number from a query parameter or
// a Last-Event-ID header: empty is 0 (from the start); anything but a
// non-negative decimal of at most 18 digits is refused.
func ParseChatSeq(s string) (int64, bool) {
	if s == "" {
		return 0, true
	}
	if len(s) > 18 {
		return 0, false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// chatFeed sends a stream's chat events: the messages after the last one
// sent, to a reader who may read them.
type chatFeed struct {
	svc    *chat.Service
	reader access.Principal
	visit  ids.VisitID
	last   int64
}

// readable: the provider always; the patient once admitted (a patient in
// the waiting room is not yet in the conversation).
func (f *chatFeed) readable(st VisitState) bool {
	return st.Me == nil || st.Me.State == "admitted"
}

// events renders the messages after f.last as SSE `chat` events and
// advances f.last; nothing when st's reader may not read them.
func (f *chatFeed) events(ctx context.Context, st VisitState) ([]byte, error) {
	if !f.readable(st) {
		return nil, nil
	}
	list, err := f.svc.Since(ctx, f.reader, f.visit, f.last)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, m := range list {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, "id: "+strconv.FormatInt(m.Seq, 10)+"\nevent: chat\ndata: "...)
		out = append(append(out, b...), '\n', '\n')
		f.last = m.Seq
	}
	return out, nil
}

// newChatFeed starts a stream's feed after the message its browser saw
// last (Last-Event-ID, sent when the browser reconnects).
func (s *Server) newChatFeed(c *gin.Context, visit ids.VisitID) *chatFeed {
	last, ok := ParseChatSeq(c.GetHeader("Last-Event-ID"))
	if !ok {
		last = 0
	}
	return &chatFeed{svc: s.chatService(), reader: principal(c), visit: visit, last: last}
}
