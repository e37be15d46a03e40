// Package chat is a visit's text chat: messages to everyone in the visit,
// in one order, kept with the visit as PHI (sealed by the store,
// phi.ChatBody), each message audited by its ID and never by its text.
//
// Who may send: the visit's provider (or one with an emergency grant), and
// its patient while admitted to the call; the route's rule (signaling)
// already refuses anyone outside the visit with 404. Delivery is the
// visit's event stream (signaling, server-sent events): a message's
// transaction sends the visit's change notice, and every stream reads the
// messages after the last one it sent.
package chat

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// MaxRunes is the longest message, in characters.
const MaxRunes = 2000

// MaxBytes bounds a request body that carries one message (JSON escaping
// of 2000 characters of 4 bytes each, and the envelope).
const MaxBytes = 6 * MaxRunes * 4

// PageSize is how many messages one read returns at most.
const PageSize = 500

// Audit actions. The entry names the message, visit and patient by ID.
const (
	ActionSend = "chat.send"
	ActionRead = "chat.read"
)

// Errors of the chat. None carries the text.
var (
	ErrEmpty       = errors.New("chat: empty message")
	ErrTooLong     = errors.New("chat: message too long")
	ErrBadText     = errors.New("chat: message is not valid text")
	ErrNotInCall   = errors.New("chat: the patient is not in the call")
	ErrVisitClosed = errors.New("chat: the visit has ended")
)

// Clean checks a message's text and returns it trimmed: valid UTF-8, no
// control characters but newlines and tabs, 1 to MaxRunes characters.
func Clean(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", ErrBadText
	}
	text = strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n"))
	if text == "" {
		return "", ErrEmpty
	}
	if utf8.RuneCountInString(text) > MaxRunes {
		return "", ErrTooLong
	}
	for _, r := range text {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || r == utf8.RuneError) {
			return "", ErrBadText
		}
	}
	return text, nil
}

// Params configure a Service.
type Params struct {
	store.Env
}

// Service sends and reads a visit's chat. It holds no state of its own.
type Service struct{ p Params }

// New returns a Service.
func New(p Params) *Service { return &Service{p: p} }

// Post is one message to send. Event is the request's audit entry (actor,
// address, break-glass reason); Send fills in the rest.
type Post struct {
	Visit  ids.VisitID
	Sender access.Principal
	Text   string
	Event  audit.Event
}

// Send stores a message, its audit entry and the visit's change notice in
// one transaction, and returns it as its sender reads it.
func (s *Service) Send(ctx context.Context, p Post) (store.ChatMessage, error) {
	text, err := Clean(p.Text)
	if err != nil {
		return store.ChatMessage{}, err
	}
	role := "provider"
	if p.Sender.Kind == access.Patient {
		role = "patient"
	}
	m := store.ChatMessage{ID: uuid.NewString(), VisitID: p.Visit, SenderID: p.Sender.ActorID(), SenderRole: role, At: s.p.Now(), Text: text}
	sealed, err := store.SealChatText(ctx, s.p.DB, m.ID, text)
	if err != nil {
		return store.ChatMessage{}, err
	}
	ev := p.Event
	ev.Action, ev.ResourceType, ev.ResourceID, ev.VisitID, ev.Outcome = ActionSend, "chat_message", m.ID, string(p.Visit), audit.Success
	err = s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		status, patient, err := store.LockChatVisit(ctx, tx, p.Visit)
		if err != nil {
			return err
		}
		if store.Closed(status) {
			return ErrVisitClosed
		}
		if err := inCall(ctx, tx, p); err != nil {
			return err
		}
		ev.PatientID = patient
		if m, err = store.AddChatMessage(ctx, tx, m, sealed); err != nil {
			return err
		}
		return store.NotifyVisit(ctx, tx, p.Visit)
	})
	if err != nil {
		return store.ChatMessage{}, err
	}
	m.Mine = true
	return m, nil
}

// inCall refuses a patient who is not admitted (waiting, turned away,
// removed or gone).
func inCall(ctx context.Context, tx pgx.Tx, p Post) error {
	if p.Sender.Kind != access.Patient {
		return nil
	}
	me, err := store.ParticipantByID(ctx, tx, p.Visit, p.Sender.ParticipantID)
	if err != nil {
		return err
	}
	if me.State != "admitted" {
		return ErrNotInCall
	}
	return nil
}

// Since returns the visit's messages after sequence number after, as
// reader reads them (Mine set). It does not audit: its caller shows them in
// a view that is audited (the visit's event stream), or calls Transcript.
func (s *Service) Since(ctx context.Context, reader access.Principal, visit ids.VisitID, after int64) ([]store.ChatMessage, error) {
	list, err := store.ChatMessages(ctx, s.p.DB, visit, after, PageSize)
	if err != nil {
		return nil, err
	}
	me := reader.ActorID()
	for i := range list {
		list[i].Mine = list[i].SenderID == me
	}
	return list, nil
}

// Transcript returns the visit's messages after sequence number after, as
// reader reads them, with an audit entry naming the visit and its patient
// written before any text leaves (ev is the request's entry).
func (s *Service) Transcript(ctx context.Context, reader access.Principal, visit ids.VisitID, after int64, ev audit.Event) ([]store.ChatMessage, error) {
	v, err := store.ScheduledVisitByID(ctx, s.p.DB, visit, false)
	if err != nil {
		return nil, err
	}
	list, err := s.Since(ctx, reader, visit, after)
	if err != nil {
		return nil, err
	}
	ev.Action, ev.ResourceType, ev.ResourceID, ev.VisitID, ev.PatientID, ev.Outcome =
		ActionRead, "visit", string(visit), string(visit), v.PatientID, audit.Success
	if err := s.p.DB.Audit().Append(ctx, ev); err != nil {
		return nil, err
	}
	return list, nil
}
