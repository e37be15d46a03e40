package signaling

import (
	"bufio"
	"context"
	"net"
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
	if err := m.Send(context.Background(), "pat@example.test", "Your video visit link", "Join: https://clinic.test/join#invite=abc\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case tr := <-got:
		for _, want := range []string{"MAIL FROM:<visits@clinic.test>", "RCPT TO:<pat@example.test>", "Subject: Your video visit link", "join#invite=abc"} {
			if !strings.Contains(tr, want) {
				t.Errorf("transcript lacks %q:\n%s", want, tr)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message reached the server")
	}
}

func TestSMTPMailerRefuses(t *testing.T) {
	m := SMTPMailer{Host: "127.0.0.1", Port: 1, From: "visits@clinic.test"}
	if err := m.Send(context.Background(), "pat@example.test\r\nBcc: x@evil.test", "s", "b"); err == nil || !strings.Contains(err.Error(), "injection") {
		t.Errorf("header injection: %v", err)
	}
}
