package signaling

import (
	"context"
	"time"

	"github.com/openvisit/openvisit/internal/reminders"
)

// ReminderMailer sends a visit reminder (internal/reminders) as email
// through the server's Mailer (SMTP, or the development outbox): the new
// one-time link the reminder made, the time and the calendar file, as the
// invite email has; no name, no reason for the visit.
type ReminderMailer struct {
	Mailer    Mailer
	PublicURL string
	Now       func() time.Time
}

// SendReminder implements reminders.Mailer.
func (m ReminderMailer) SendReminder(ctx context.Context, r reminders.Reminder) error {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	link := InviteURL(m.PublicURL, r.Secret)
	msg := inviteMessage(r.Visit, r.Email, link, icsFor(r.Visit, link, now()), "")
	msg.Subject = "Reminder: your video visit " + reminders.When(r.Offset)
	msg.Body = "Reminder: you have a video visit with your care provider " + reminders.When(r.Offset) + ".\r\n\r\n" +
		"This new link replaces the one we sent before, which no longer works.\r\n\r\n" + msg.Body
	return m.Mailer.Send(ctx, msg)
}
