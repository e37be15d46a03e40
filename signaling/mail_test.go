package signaling

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeSMTP accepts one message on loopback and returns what it received.
func fakeSMTP(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1)
	go func() {
		defer ln.Close()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(conn)
		say := func(s string) { _, _ = conn.Write([]byte(s + "\r\n")) }
		say("220 fake ESMTP")
		var transcript strings.Builder
		inData := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			transcript.WriteString(line)
			switch {
			case inData && line == ".\r\n":
				inData = false
				say("250 queued")
			case inData:
			case strings.HasPrefix(line, "EHLO"), strings.HasPrefix(line, "HELO"):
				say("250 fake")
			case strings.HasPrefix(line, "DATA"):
				inData = true
				say("354 go on")
			case strings.HasPrefix(line, "QUIT"):
				say("221 bye")
				ch <- transcript.String()
				return
			default:
				say("250 ok")
			}
		}
	}()
	return ln.Addr().String(), ch
}

func TestSMTPMailerSends(t *testing.T) {
	addr, got := fakeSMTP(t)
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	m := SMTPMailer{Host: host, Port: p, From: "visits@clinic.test"}
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:v1@openvisit\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	msg := Message{To: "pat@example.test", Subject: "Your video visit link", Body: "Join: https://clinic.test/join#invite=abc\r\n",
		Attachments: []Attachment{{Name: "video-visit.ics", ContentType: "text/calendar; charset=utf-8; method=PUBLISH", Data: []byte(ics)}}}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	var tr string
	select {
	case tr = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no message reached the server")
	}
	for _, want := range []string{"MAIL FROM:<visits@clinic.test>", "RCPT TO:<pat@example.test>"} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	// The message as a mail client reads it: the text and the calendar file.
	_, data, _ := strings.Cut(tr, "DATA\r\n")
	data, _, _ = strings.Cut(data, "\r\n.\r\n")
	parsed, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, data)
	}
	if s := parsed.Header.Get("Subject"); s != "Your video visit link" {
		t.Errorf("subject %q", s)
	}
	mt, params, err := mime.ParseMediaType(parsed.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q (%v)", parsed.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(parsed.Body, params["boundary"])
	var parts []string
	for {
		part, err := mr.NextPart() // decodes quoted-printable; base64 below
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		if part.Header.Get("Content-Transfer-Encoding") == "base64" {
			b, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
			if err != nil {
				t.Fatal(err)
			}
		}
		parts = append(parts, part.Header.Get("Content-Type")+"|"+part.FileName()+"|"+string(b))
	}
	want := []string{"text/plain; charset=utf-8||" + msg.Body, "text/calendar; charset=utf-8; method=PUBLISH|video-visit.ics|" + ics}
	if len(parts) != 2 || parts[0] != want[0] || parts[1] != want[1] {
		t.Errorf("parts:\n%q\nwant\n%q", parts, want)
	}
}

func TestSMTPMailerRefuses(t *testing.T) {
	m := SMTPMailer{Host: "127.0.0.1", Port: 1, From: "visits@clinic.test"}
	if err := m.Send(context.Background(), Message{To: "pat@example.test\r\nBcc: x@evil.test", Subject: "s", Body: "b"}); err == nil || !strings.Contains(err.Error(), "injection") {
		t.Errorf("header injection: %v", err)
	}
	bad := Message{To: "pat@example.test", Subject: "s", Attachments: []Attachment{{Name: "a\"\r\nX-Evil: 1", ContentType: "text/plain"}}}
	if err := m.Send(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "injection") {
		t.Errorf("attachment header injection: %v", err)
	}
}

// A message without attachments is plain text, quoted-printable.
func TestMessageMIMEPlain(t *testing.T) {
	raw, err := Message{To: "pat@example.test", Subject: "Ünïcode subject", Body: "line one\r\nline two é\r\n"}.MIME("visits@clinic.test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	if s, err := dec.DecodeHeader(parsed.Header.Get("Subject")); err != nil || s != "Ünïcode subject" {
		t.Errorf("subject %q (%v)", s, err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(parsed.Body))
	if string(body) != "line one\r\nline two é\r\n" {
		t.Errorf("body %q", body)
	}
}
