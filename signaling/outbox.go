package signaling

import (
	"context"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/outbox"
	"github.com/openvisit/openvisit/internal/store"
)

// Outbox is the development mail outbox: a Mailer that keeps each message
// in PostgreSQL (dev_outbox, migration 0008) instead of sending it, so that
// `make run` shows the real invite emails and their calendar files on the
// /outbox page. DEVELOPMENT ONLY: the messages hold PHI and one-time links.
// The app creates an Outbox only with environment development and no SMTP
// server; without one (production) its routes are not registered at all.
type Outbox struct {
	box *outbox.Box
}

// NewOutbox returns an Outbox keeping mail through st.
func NewOutbox(st *store.DB) *Outbox { return &Outbox{box: outbox.New(st)} }

// Send implements Mailer: the message is kept, not sent.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	kept := store.OutboxMessage{SentBy: m.SentBy, PatientID: m.PatientID, VisitID: m.VisitID, To: m.To, Subject: m.Subject, Body: m.Body}
	for _, a := range m.Attachments {
		kept.Attachments = append(kept.Attachments, store.OutboxAttachment{Name: a.Name, ContentType: a.ContentType, Data: a.Data})
	}
	return o.box.Keep(ctx, kept)
}

// outboxSender is whose mail the caller reads: a provider their own, an
// admin everyone's.
func outboxSender(c *gin.Context) ids.UserID {
	if p := principal(c); p.Kind != access.Admin {
		return p.UserID
	}
	return ""
}

// outboxEvent is the audit entry of a read of the outbox.
func (s *Server) outboxEvent(c *gin.Context, id, reason string) audit.Event {
	p := principal(c)
	return audit.Event{ActorID: p.ActorID(), ActorRole: p.AuditRole(), Action: actionOutboxRead, ResourceType: "dev_outbox",
		ResourceID: id, Outcome: audit.Success, Reason: reason, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
}

// listOutbox lists the newest kept messages (recipients and subjects),
// audited per patient shown (outbox.Box.List).
func (s *Server) listOutbox(c *gin.Context) {
	list, err := s.p.Outbox.box.List(c.Request.Context(), outboxSender(c), s.outboxEvent(c, "", "list"))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"messages": list})
}

// getOutboxMessage reads the message in the path, the caller's own (404
// otherwise), audited before it leaves.
func (s *Server) getOutboxMessage(c *gin.Context) {
	m, err := s.p.Outbox.box.Message(c.Request.Context(), c.Param("message_id"), outboxSender(c), s.outboxEvent(c, "", ""))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, m)
}

// getOutboxAttachment downloads an attachment (the calendar file) as the
// mail's recipient would save it.
func (s *Server) getOutboxAttachment(c *gin.Context) {
	a, err := s.p.Outbox.box.Attachment(c.Request.Context(), c.Param("message_id"), c.Param("n"), outboxSender(c), s.outboxEvent(c, "", ""))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Name}))
	c.Data(http.StatusOK, a.ContentType, a.Data)
}

// guard: an Outbox is a Mailer.
var _ Mailer = (*Outbox)(nil)
