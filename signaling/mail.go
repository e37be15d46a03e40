package signaling

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
)

// Mailer sends email (invites). Messages carry a link and a time, never the
// patient's name or the reason for the visit.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Message is one plain-text email with optional attachments (a visit's
// calendar file).
type Message struct {
	To          string
	Subject     string
	Body        string
	Attachments []Attachment
	// Who and what the mail is about, as opaque IDs. They are not sent;
	// the development outbox keeps them to scope and audit who reads it.
	PatientID string
	VisitID   ids.VisitID
	SentBy    ids.UserID
}

// Attachment is a file attached to a Message.
type Attachment struct {
	Name        string // file name, e.g. video-visit.ics
	ContentType string // e.g. text/calendar; charset=utf-8; method=PUBLISH
	Data        []byte
}

// validate refuses what could inject headers or break the MIME structure.
func (m Message) validate() error {
	if strings.ContainsAny(m.To+m.Subject, "\r\n") {
		return errors.New("mail: header injection refused")
	}
	for _, a := range m.Attachments {
		if strings.ContainsAny(a.Name+a.ContentType, "\r\n\"") {
			return errors.New("mail: attachment header injection refused")
		}
	}
	return nil
}

// MIME renders m as an RFC 5322 message from from: text/plain alone, or
// multipart/mixed with the attachments base64-encoded.
func (m Message) MIME(from string, now time.Time) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from)
	hdr("To", m.To)
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("MIME-Version", "1.0")
	if len(m.Attachments) == 0 {
		hdr("Content-Type", "text/plain; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Body); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	hdr("Content-Type", `multipart/mixed; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	text, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"}})
	if err != nil {
		return nil, err
	}
	if err := writeQP(text, m.Body); err != nil {
		return nil, err
	}
	for _, a := range m.Attachments {
		part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {a.ContentType},
			"Content-Transfer-Encoding": {"base64"},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": a.Name})}})
		if err != nil {
			return nil, err
		}
		enc := base64.StdEncoding.EncodeToString(a.Data)
		for len(enc) > 76 {
			_, _ = part.Write([]byte(enc[:76] + "\r\n"))
			enc = enc[76:]
		}
		_, _ = part.Write([]byte(enc + "\r\n"))
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeQP(w interface{ Write([]byte) (int, error) }, s string) error {
	q := quotedprintable.NewWriter(w)
	if _, err := q.Write([]byte(s)); err != nil {
		return err
	}
	return q.Close()
}

// SMTPMailer sends mail through a configured SMTP server, with STARTTLS
// required unless the server is on loopback (a local relay).
type SMTPMailer struct {
	Host     string
	Port     int
	Username string
	Password string
	From     string
}

// Send implements Mailer.
func (m SMTPMailer) Send(ctx context.Context, msg Message) error {
	raw, err := msg.MIME(m.From, time.Now())
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("mail: dial: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	c, err := smtp.NewClient(conn, m.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: %w", err)
	}
	defer c.Close()
	loopback := false
	if ip := net.ParseIP(m.Host); ip != nil && ip.IsLoopback() || m.Host == "localhost" {
		loopback = true
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: m.Host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("mail: starttls: %w", err)
		}
	} else if !loopback {
		return errors.New("mail: the SMTP server does not offer STARTTLS")
	}
	if m.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, m.Host)); err != nil {
			return fmt.Errorf("mail: auth: %w", err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("mail: from: %w", err)
	}
	if err := c.Rcpt(msg.To); err != nil {
		return fmt.Errorf("mail: rcpt: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: data: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("mail: write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	return c.Quit()
}
