package signaling

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/openvisit/openvisit/internal/i18n"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// The invite email and its calendar file, in the invite's language, from
// the same catalogue the patient's pages use (web/static/i18n, embedded).

// invitation is what the email and the calendar file are made of.
type invitation struct {
	visit store.ScheduledVisit
	link  string
	cat   *i18n.Catalogue
	lang  string
	zone  *time.Location // the clinic's, for the email's time
}

// message is the invite email: the link, the time and the calendar file;
// no name, no reason for the visit.
func (in invitation) message(to, ics string, by ids.UserID) Message {
	t := func(key string, kv ...string) string { return in.cat.T(in.lang, key, kv...) }
	body := t("email.invite.intro") + "\r\n\r\n" + t("email.invite.link") + "\r\n" + in.link + "\r\n\r\n" +
		t("email.invite.dob") + "\r\n"
	if in.visit.ScheduledStart != nil {
		body += "\r\n" + t("email.invite.when", "when", in.longTime(*in.visit.ScheduledStart)) + "\r\n"
	}
	m := Message{To: to, Subject: t("email.invite.subject"), PatientID: in.visit.PatientID, VisitID: in.visit.ID, SentBy: by}
	if ics != "" {
		body += "\r\n" + t("email.invite.ics") + "\r\n"
		m.Attachments = []Attachment{{Name: "video-visit.ics", ContentType: "text/calendar; charset=utf-8; method=PUBLISH", Data: []byte(ics)}}
	}
	m.Body = body
	return m
}

// longTime words a time in the invite's language and the clinic's zone:
// "Tuesday, March 3, 2026 at 2:30 PM (PST)", "martes 3 de marzo de 2026 a
// las 14:30 (PST)". The catalogue holds the names and the order.
func (in invitation) longTime(at time.Time) string {
	loc := in.zone
	if loc == nil {
		loc = time.UTC
	}
	at = at.In(loc)
	t := func(key string, kv ...string) string { return in.cat.T(in.lang, key, kv...) }
	h12 := at.Hour() % 12
	if h12 == 0 {
		h12 = 12
	}
	ampm := "AM"
	if at.Hour() >= 12 {
		ampm = "PM"
	}
	clock := t("date.time", "h24", fmt.Sprintf("%02d", at.Hour()), "h12", strconv.Itoa(h12),
		"mm", fmt.Sprintf("%02d", at.Minute()), "ampm", ampm)
	return t("date.long",
		"weekday", t("date.weekday."+strconv.Itoa(int(at.Weekday()))),
		"month", t("date.month."+strconv.Itoa(int(at.Month()))),
		"day", strconv.Itoa(at.Day()), "year", strconv.Itoa(at.Year()),
		"time", clock, "zone", at.Format("MST"))
}

// ics builds a calendar file for the visit: the time (UTC, which calendar
// apps show in the reader's own zone) and the link, no patient data (it
// travels by email and sits in calendars). LANGUAGE tags the texts.
func (in invitation) ics(now time.Time) string {
	v := in.visit
	if v.ScheduledStart == nil || v.ScheduledEnd == nil {
		return ""
	}
	esc := strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`)
	const f = "20060102T150405Z"
	lang := ";LANGUAGE=" + in.lang
	lines := []string{
		"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//OpenVisit//Visits//EN", "METHOD:PUBLISH", "BEGIN:VEVENT",
		"UID:" + string(v.ID) + "@openvisit",
		"DTSTAMP:" + now.UTC().Format(f),
		"DTSTART:" + v.ScheduledStart.UTC().Format(f),
		"DTEND:" + v.ScheduledEnd.UTC().Format(f),
		"SUMMARY" + lang + ":" + esc.Replace(in.cat.T(in.lang, "ics.summary")),
		"DESCRIPTION" + lang + ":" + esc.Replace(in.cat.T(in.lang, "ics.description", "link", in.link)),
		"URL:" + in.link,
		"END:VEVENT", "END:VCALENDAR",
	}
	for i, l := range lines {
		lines[i] = foldICS(l)
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

// foldICS folds a content line at 75 octets (RFC 5545 3.1), never inside a
// UTF-8 character: the continuation lines start with a space.
func foldICS(line string) string {
	const max = 75
	var b strings.Builder
	n := 0
	for _, r := range line {
		size := len(string(r))
		if n+size > max {
			b.WriteString("\r\n ")
			n = 1
		}
		b.WriteRune(r)
		n += size
	}
	return b.String()
}
