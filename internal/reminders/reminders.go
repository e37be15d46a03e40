// Package reminders sends a patient reminders of a scheduled visit, by
// email and by SMS, at configured offsets before its start (default 24 h
// and 1 h), each once.
//
// The link. An invite's secret is known only when the invite is made (the
// database keeps its hash), so a reminder cannot repeat the link the
// patient already has. A reminder therefore rotates it: in one transaction
// it revokes the visit's unused invite, makes a new one, and sends the new
// link, saying it replaces the earlier one. Keeping the secret recoverable
// instead (sealed in the database) would turn a one-time credential into a
// stored one; rotation keeps "the secret exists only in the patient's
// message". A reminder is sent only while the visit's invite is unused,
// unlocked and older than the reminder's time: a patient who already
// joined, or whose link was just sent, gets none.
//
// Once each, across API replicas: a sweep claims one due visit at a time
// with FOR UPDATE SKIP LOCKED, and the (visit, offset) row of
// visit_reminders is inserted in the transaction that rotates the invite
// and sends; another replica skips the locked visit, and once committed
// the row makes the reminder no longer due. A send that fails rolls the
// transaction back (the old link stays valid) and is retried at the next
// sweep.
package reminders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/store"
)

// DefaultOffsets are the reminders sent when none are configured.
var DefaultOffsets = []time.Duration{24 * time.Hour, time.Hour}

// ActionRemind is the audit action of a sent reminder (IDs only).
const ActionRemind = "invite.reminder"

// Reminder is one reminder to send: the visit, the new invite's secret
// (the link is made from it), and where to send it. It holds PHI (the
// patient's email and phone): never log it.
type Reminder struct {
	Visit  store.ScheduledVisit
	Offset time.Duration
	Secret string
	Email  string
	Phone  string
	Lang   string // the invite's language (its catalogue code), kept by the new link
}

// Mailer sends a reminder's email and words its text message, both in the
// invite's language (signaling builds them from the message catalogue).
// The text message says only when, and that the link is in the email: no
// name, no reason, no link (an SMS gateway is not where a one-time
// credential should travel).
type Mailer interface {
	SendReminder(ctx context.Context, r Reminder) error
	SMSText(r Reminder) string
}

// Params configure a Service.
type Params struct {
	store.Env
	// Offsets before the scheduled start; nil: DefaultOffsets.
	Offsets []time.Duration
	// Mail sends the email; nil: no email reminders.
	Mail Mailer
	// SMS sends the text message; nil: no SMS reminders.
	SMS   Sender
	Log   *slog.Logger
	Batch int // visits per sweep at most; 0: 100
}

// Service sends due reminders. It holds no state between sweeps.
type Service struct{ p Params }

// New returns a Service.
func New(p Params) *Service {
	if p.Offsets == nil {
		p.Offsets = DefaultOffsets
	}
	p.Offsets = slices.Clone(p.Offsets)
	slices.Sort(p.Offsets) // nearest the start first: it supersedes the farther ones
	if p.Batch == 0 {
		p.Batch = 100
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
	return &Service{p: p}
}

// errNone: no reminder is due.
var errNone = errors.New("reminders: none due")

// Sweep sends every reminder due now (up to Batch) and returns how many it
// sent.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	if s.p.Mail == nil { // the new link travels by email: no email, no reminder
		return 0, nil
	}
	sent := 0
	for _, off := range s.p.Offsets {
		for sent < s.p.Batch {
			err := s.one(ctx, off)
			if errors.Is(err, errNone) {
				break
			}
			if err != nil {
				return sent, err
			}
			sent++
		}
	}
	return sent, nil
}

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.p.Log.Warn("reminders: sweep failed; retrying at the next", "sent", n, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// one claims one visit due for the reminder at off, rotates its invite and
// sends, in one transaction with the reminder's row and audit entry.
func (s *Service) one(ctx context.Context, off time.Duration) error {
	now := s.p.Now()
	ev := audit.Event{ActorRole: "system", Action: ActionRemind, ResourceType: "visit", Outcome: audit.Success}
	return s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		visit, current, err := store.ClaimDueReminder(ctx, tx, off, now)
		if errors.Is(err, store.ErrNotFound) {
			return errNone
		}
		if err != nil {
			return err
		}
		v, err := store.ScheduledVisitByID(ctx, tx, visit, false)
		if err != nil {
			return err
		}
		p, err := store.PatientByID(ctx, tx, v.PatientID)
		if err != nil {
			return err
		}
		ev.ResourceID, ev.VisitID, ev.PatientID = string(v.ID), string(v.ID), v.PatientID
		ev.Reason = "before start: " + off.String()
		if p.Email == "" { // nowhere to send the new link: recorded as not sent, the link kept
			ev.Outcome, ev.Reason = audit.Failure, ev.Reason+"; no email address"
			return store.RecordReminder(ctx, tx, v.ID, off, now, current, false, false)
		}
		lang, err := store.InviteLang(ctx, tx, current)
		if err != nil {
			return err
		}
		inv, secret, err := store.CreateLangInvite(ctx, tx, v.ID, now, lang)
		if err != nil {
			return err
		}
		r := Reminder{Visit: v, Offset: off, Secret: secret, Email: p.Email, Phone: p.Phone, Lang: lang}
		email, sms, err := s.send(ctx, r)
		if err != nil {
			return err
		}
		return store.RecordReminder(ctx, tx, v.ID, off, now, inv.ID, email, sms)
	})
}

// send sends r by email, then by SMS when configured and the patient has
// a phone number. The email carries the new link: its failure is an error
// (the transaction rolls back, the old link stays, the reminder is retried
// at the next sweep); the SMS only points to the email, and its failure
// after the email went is logged by visit ID only.
func (s *Service) send(ctx context.Context, r Reminder) (email, sms bool, err error) {
	if err := s.p.Mail.SendReminder(ctx, r); err != nil {
		return false, false, fmt.Errorf("reminders: email for visit %s: %w", r.Visit.ID, err)
	}
	if s.p.SMS != nil && r.Phone != "" {
		if err := s.p.SMS.Send(ctx, SMS{To: r.Phone, Body: s.p.Mail.SMSText(r), VisitID: r.Visit.ID}); err != nil {
			s.p.Log.Warn("reminders: sms failed after the email went", "visit", r.Visit.ID, "err", err)
			return true, false, nil
		}
		sms = true
	}
	return true, sms, nil
}
