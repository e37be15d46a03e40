package signaling

import (
	"context"
	"strconv"
	"time"

	"github.com/openvisit/openvisit/internal/i18n"
	"github.com/openvisit/openvisit/internal/reminders"
	"github.com/openvisit/openvisit/web"
)

// ReminderMailer sends a visit reminder (internal/reminders) as email
// through the server's Mailer (SMTP, or the development outbox): the new
// one-time link the reminder made, the time and the calendar file, as the
// invite email has; no name, no reason for the visit.
type ReminderMailer struct {
	Mailer    Mailer
	PublicURL string
	Zone      *time.Location // the clinic's, for the email's time (clinic.time_zone)
	Now       func() time.Time
}

// SendReminder implements reminders.Mailer: the invite email in the
// invite's language, under a reminder's subject and first lines from the
// same catalogue.
func (m ReminderMailer) SendReminder(ctx context.Context, r reminders.Reminder) error {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	cat, lang, err := reminderLanguage(r)
	if err != nil {
		return err
	}
	in := invitation{visit: r.Visit, link: InviteURL(m.PublicURL, r.Secret), cat: cat, lang: lang, zone: m.Zone}
	msg := in.message(r.Email, in.ics(now()), "")
	t := func(key string, kv ...string) string { return cat.T(lang, key, kv...) }
	when := reminderWhen(t, r.Offset)
	msg.Subject = t("email.reminder.subject", "when", when)
	msg.Body = t("email.reminder.intro", "when", when) + "\r\n\r\n" + t("email.reminder.replaces") + "\r\n\r\n" + msg.Body
	return m.Mailer.Send(ctx, msg)
}

// SMSText implements reminders.Mailer: the text message in the invite's
// language — when, and that the new link is in the email.
func (m ReminderMailer) SMSText(r reminders.Reminder) string {
	cat, lang, err := reminderLanguage(r)
	if err != nil {
		return "" // the embedded catalogue did not load: the email failed first
	}
	t := func(key string, kv ...string) string { return cat.T(lang, key, kv...) }
	return t("sms.reminder", "when", reminderWhen(t, r.Offset))
}

// reminderLanguage is the catalogue and the language of r's invite (the
// default when the catalogue no longer has it).
func reminderLanguage(r reminders.Reminder) (*i18n.Catalogue, string, error) {
	cat, err := web.Catalogue()
	if err != nil {
		return nil, "", err
	}
	if !cat.Has(r.Lang) {
		return cat, i18n.Default, nil
	}
	return cat, r.Lang, nil
}

// reminderWhen words how long before the visit a reminder goes.
func reminderWhen(t func(string, ...string) string, off time.Duration) string {
	switch {
	case off == 24*time.Hour:
		return t("email.reminder.tomorrow")
	case off == time.Hour:
		return t("email.reminder.in_one_hour")
	case off%time.Hour == 0:
		return t("email.reminder.in_hours", "n", strconv.Itoa(int(off/time.Hour)))
	}
	return t("email.reminder.in_minutes", "n", strconv.Itoa(int(off/time.Minute)))
}
