package signaling

import (
	"context"
	"time"

	"github.com/openvisit/openvisit/internal/reminders"
)

// ReminderStrings are the reminder email's patient-facing words, in one
// place for the message catalogue (issue 17's languages); the rest of the
// email is the invite email's.
var ReminderStrings = struct {
	Subject  func(when string) string
	Intro    func(when string) string
	Replaces string
}{
	Subject: func(when string) string { return "Reminder: your video visit " + when },
	Intro: func(when string) string {
		return "Reminder: you have a video visit with your care provider " + when + "."
	},
	Replaces: "This new link replaces the one we sent before, which no longer works.",
}

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
	when := reminders.When(r.Offset)
	msg.Subject = ReminderStrings.Subject(when)
	msg.Body = ReminderStrings.Intro(when) + "\r\n\r\n" + ReminderStrings.Replaces + "\r\n\r\n" + msg.Body
	return m.Mailer.Send(ctx, msg)
}
