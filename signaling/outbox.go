package signaling

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Outbox is the development mail outbox: a Mailer that keeps each message
// in PostgreSQL (dev_outbox, migration 0008) instead of sending it, so that
// `make run` shows the real invite emails and their calendar files on the
// /outbox page. DEVELOPMENT ONLY: the messages hold PHI and one-time links.
// The app creates an Outbox only with environment development and no SMTP
// server; without one (production) its routes are not registered at all.
type Outbox struct {
	st *store.DB
}

// NewOutbox returns an Outbox keeping mail through st.
func NewOutbox(st *store.DB) *Outbox { return &Outbox{st: st} }

// Send implements Mailer: the message is kept, not sent.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	kept := store.OutboxMessage{SentBy: m.SentBy, PatientID: m.PatientID, VisitID: m.VisitID, To: m.To, Subject: m.Subject, Body: m.Body}
	for _, a := range m.Attachments {
		kept.Attachments = append(kept.Attachments, store.OutboxAttachment{Name: a.Name, ContentType: a.ContentType, Data: a.Data})
	}
	return o.st.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := store.AddOutboxMessage(ctx, tx, kept); err != nil {
			return fmt.Errorf("outbox: send: %w", err)
		}
		return nil
	})
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
	return audit.Event{ActorID: p.ActorID(), ActorRole: string(p.Kind), Action: actionOutboxRead, ResourceType: "dev_outbox",
		ResourceID: id, Outcome: audit.Success, Reason: reason, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
}

// listOutbox lists the newest kept messages (recipients and subjects). The
// recipients are patients' email addresses: one audit entry per patient
// shown, before the list leaves (shown.go).
func (s *Server) listOutbox(c *gin.Context) {
	ctx := c.Request.Context()
	list, err := store.OutboxMessages(ctx, s.p.DB, outboxSender(c), 100)
	if err != nil {
		s.abort(c, err)
		return
	}
	base := s.outboxEvent(c, "", "list")
	patients := make([]string, len(list))
	for i, m := range list {
		patients[i] = m.PatientID
	}
	evs := shownEvents(base, patients)
	if len(evs) == 0 {
		evs = []audit.Event{base}
	}
	if err := s.p.DB.Audit().AppendAll(ctx, evs); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"messages": list})
}

// readOutbox reads the message in the path, the caller's own (404
// otherwise).
func (s *Server) readOutbox(c *gin.Context) (store.OutboxMessage, bool) {
	m, err := store.OutboxMessageByID(c.Request.Context(), s.p.DB, c.Param("message_id"), outboxSender(c))
	if err != nil {
		s.abort(c, err)
		return m, false
	}
	return m, true
}

// auditOutboxRead records the read of m (what: "read" or the attachment),
// naming its patient, before any of it leaves.
func (s *Server) auditOutboxRead(c *gin.Context, m store.OutboxMessage, what string) bool {
	ev := s.outboxEvent(c, m.ID, what)
	ev.PatientID, ev.VisitID = m.PatientID, string(m.VisitID)
	if err := s.p.DB.Audit().Append(c.Request.Context(), ev); err != nil {
		s.abort(c, errAuditDown(err))
		return false
	}
	c.Header("Cache-Control", "no-store")
	return true
}

func (s *Server) getOutboxMessage(c *gin.Context) {
	m, ok := s.readOutbox(c)
	if ok && s.auditOutboxRead(c, m, "read") {
		c.JSON(http.StatusOK, m)
	}
}

// getOutboxAttachment downloads an attachment (the calendar file) as the
// mail's recipient would save it.
func (s *Server) getOutboxAttachment(c *gin.Context) {
	m, ok := s.readOutbox(c)
	if !ok {
		return
	}
	for _, a := range m.Attachments {
		if c.Param("n") != strconv.Itoa(a.N) {
			continue
		}
		if s.auditOutboxRead(c, m, "attachment "+a.Name) {
			c.Header("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Name}))
			c.Data(http.StatusOK, a.ContentType, a.Data)
		}
		return
	}
	s.abort(c, errNotFound)
}

// guard: an Outbox is a Mailer.
var _ Mailer = (*Outbox)(nil)
