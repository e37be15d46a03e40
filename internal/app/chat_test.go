package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// chatEvent is one `chat` event of a visit's event stream.
type chatEvent struct {
	id   string
	Seq  int64  `json:"seq"`
	Role string `json:"role"`
	Text string `json:"text"`
	Mine bool   `json:"mine"`
}

// chatStream opens the visit's event stream as c, resuming after lastID
// ("" for the start), and returns a function reading its next chat event.
func chatStream(t *testing.T, c *client, visit, lastID string) func() chatEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", c.s.URL+"/api/v1/visits/"+visit+"/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events: %v %v", err, resp)
	}
	t.Cleanup(func() { resp.Body.Close() })
	r := bufio.NewReader(resp.Body)
	return func() chatEvent {
		t.Helper()
		var ev chatEvent
		kind := ""
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("event stream ended before a chat event: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && kind == "chat":
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
					t.Fatal(err)
				}
				return ev
			case line == "":
				kind, ev = "", chatEvent{}
			}
		}
	}
}

// TestChatOverEvents: the provider's messages reach the admitted patient's
// event stream in order, with the sequence number as the event ID; a
// stream resumed with Last-Event-ID starts after it; a waiting patient
// cannot send; an over-long message gets a clear error.
func TestChatOverEvents(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "chat@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	const dob = "1961-01-31"
	v, inv := scheduled(t, pc, s.Clock.Now().Add(10*time.Minute), dob)
	visit := string(v.ID)
	patient := s.newClient(t)
	if r := patient.redeem(inv.secret(t), dob); r.Status != 200 {
		t.Fatalf("redeem: %d %s", r.Status, r.Body)
	}
	if r := patient.do("POST", "/api/v1/visits/"+visit+"/chat", map[string]string{"text": "early"}); r.code() != "not_in_call" {
		t.Fatalf("a waiting patient sends: %d %s, want not_in_call", r.Status, r.Body)
	}
	var st struct{ Participants []struct{ ID string } }
	pc.do("GET", "/api/v1/visits/"+visit+"/state", nil).decode(t, &st)
	if r := pc.do("POST", "/api/v1/visits/"+visit+"/participants/"+st.Participants[0].ID+"/admit", struct{}{}); r.Status != 200 {
		t.Fatalf("admit: %d %s", r.Status, r.Body)
	}
	next := chatStream(t, patient, visit, "")
	for _, text := range []string{"one", "two", "three"} {
		if r := pc.do("POST", "/api/v1/visits/"+visit+"/chat", map[string]string{"text": text}); r.Status != 201 {
			t.Fatalf("send %q: %d %s", text, r.Status, r.Body)
		}
	}
	for i, want := range []string{"one", "two", "three"} {
		ev := next()
		if ev.Text != want || ev.Seq != int64(i+1) || ev.id != ev.idOf() || ev.Role != "provider" || ev.Mine {
			t.Errorf("chat event %d = %+v, want %q from the provider, seq %d", i, ev, want, i+1)
		}
	}
	if ev := chatStream(t, patient, visit, "2")(); ev.Seq != 3 || ev.Text != "three" {
		t.Errorf("resumed after 2: first event %+v, want seq 3", ev)
	}
	r := patient.do("POST", "/api/v1/visits/"+visit+"/chat", map[string]string{"text": strings.Repeat("a", 2001)})
	if r.Status != 400 || r.code() != "chat_too_long" {
		t.Errorf("2001 characters: %d %s, want 400 chat_too_long", r.Status, r.Body)
	}
}

func (e chatEvent) idOf() string {
	b, _ := json.Marshal(e.Seq)
	return string(b)
}
