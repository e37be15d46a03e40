package signaling

import (
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/web"
)

// sentMail is a message as a mail client reads it from the wire: the
// decoded subject and each part's decoded text, by file name ("" = body).
type sentMail struct {
	subject string
	parts   map[string]string
}

func readSent(t *testing.T, transcript string) sentMail {
	t.Helper()
	_, data, _ := strings.Cut(transcript, "DATA\r\n")
	data, _, _ = strings.Cut(data, "\r\n.\r\n")
	msg, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	out := sentMail{subject: subject, parts: map[string]string{}}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		if part.Header.Get("Content-Transfer-Encoding") == "base64" {
			if b, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", "")); err != nil {
				t.Fatal(err)
			}
		}
		out.parts[part.FileName()] = string(b)
	}
	return out
}

// The invite email and its calendar file in the invite's language, through
// a real SMTP exchange: Spanish words, the time in the clinic's zone in
// Spanish, the calendar texts tagged LANGUAGE=es and folded at 75 octets;
// English the same way.
func TestInviteEmailInLanguage(t *testing.T) {
	cat, err := web.Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 3, 22, 30, 0, 0, time.UTC) // 14:30 PST
	end := start.Add(30 * time.Minute)
	v := store.ScheduledVisit{Visit: store.Visit{ID: ids.VisitID("7d1f0a52-3a55-4d7e-9a7e-2a0b8f7e6c11"), ScheduledStart: &start, ScheduledEnd: &end}, PatientID: "p1"}
	link := "https://clinic.test/join#invite=" + strings.Repeat("A", 43)
	for _, tc := range []struct {
		lang                         string
		subject, when, summary, desc string
	}{
		{"es", "El enlace de su consulta por video", "Hora de la consulta: martes 3 de marzo de 2026 a las 14:30 (PST)",
			"SUMMARY;LANGUAGE=es:Consulta por video", "Entre desde este enlace (se abre una hora antes): " + link},
		{"en", "Your video visit link", "Visit time: Tuesday, March 3, 2026 at 2:30 PM (PST)",
			"SUMMARY;LANGUAGE=en:Video visit", "Join from this link (opens one hour before): " + link},
	} {
		in := invitation{visit: v, link: link, cat: cat, lang: tc.lang, zone: la}
		ics := in.ics(start.Add(-time.Hour))
		addr, got := fakeSMTP(t)
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		if err := (SMTPMailer{Host: host, Port: p, From: "visits@clinic.test"}).Send(context.Background(), in.message("pat@example.test", ics, "")); err != nil {
			t.Fatal(err)
		}
		var transcript string
		select {
		case transcript = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("no message reached the server")
		}
		m := readSent(t, transcript)
		if m.subject != tc.subject {
			t.Errorf("%s: subject %q, want %q", tc.lang, m.subject, tc.subject)
		}
		body := m.parts[""]
		for _, want := range []string{tc.when, link} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: the body lacks %q:\n%s", tc.lang, want, body)
			}
		}
		cal := m.parts["video-visit.ics"]
		for _, line := range strings.Split(strings.TrimSuffix(cal, "\r\n"), "\r\n") {
			if len(line) > 75 {
				t.Errorf("%s: calendar line of %d octets: %q", tc.lang, len(line), line)
			}
		}
		unfolded := strings.ReplaceAll(cal, "\r\n ", "")
		for _, want := range []string{tc.summary, "DTSTART:20260303T223000Z", tc.desc} {
			if !strings.Contains(unfolded, want) {
				t.Errorf("%s: the calendar file lacks %q:\n%s", tc.lang, want, unfolded)
			}
		}
	}
}
