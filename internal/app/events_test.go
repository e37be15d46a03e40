package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/store"
)

// sse reads server-sent events from a stream.
type sse struct {
	t    *testing.T
	body *bufio.Reader
	stop func()
}

func (c *client) events(path string) *sse {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", c.s.URL+path, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		c.t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c.t.Cleanup(func() { cancel(); resp.Body.Close() })
	return &sse{t: c.t, body: bufio.NewReader(resp.Body), stop: cancel}
}

// next returns the next state event's data, or ok=false when the stream ends.
func (e *sse) next() (data []byte, ok bool) {
	for {
		line, err := e.body.ReadString('\n')
		if err != nil {
			return nil, false
		}
		if strings.HasPrefix(line, "data: ") {
			return []byte(strings.TrimSpace(strings.TrimPrefix(line, "data: "))), true
		}
	}
}

type stateEvent struct {
	Status       string
	Me           *store.Participant
	Participants []store.Participant
}

// until reads events until pred holds, failing after a deadline.
func (e *sse) until(pred func(stateEvent) bool) stateEvent {
	e.t.Helper()
	timer := time.AfterFunc(20*time.Second, e.stop)
	defer timer.Stop()
	for {
		data, ok := e.next()
		if !ok {
			e.t.Fatal("event stream ended before the expected state")
		}
		var st stateEvent
		if err := json.Unmarshal(data, &st); err != nil {
			e.t.Fatalf("event %s: %v", data, err)
		}
		if pred(st) {
			return st
		}
	}
}

func TestWaitingRoomEvents(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "p@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	const dob = "1960-12-31"
	v, inv := scheduled(t, pc, s.Clock.Now().Add(10*time.Minute), dob)
	providerStream := pc.events("/api/v1/visits/" + string(v.ID) + "/events")
	providerStream.until(func(st stateEvent) bool { return st.Status == "scheduled" && len(st.Participants) == 0 })

	patient := s.newClient(t)
	if r := patient.redeem(inv.secret(t), dob); r.Status != 200 {
		t.Fatalf("redeem: %d %s", r.Status, r.Body)
	}
	// The provider sees the patient arrive, in real time.
	st := providerStream.until(func(st stateEvent) bool { return len(st.Participants) == 1 })
	if st.Participants[0].State != "waiting" || st.Status != "waiting" {
		t.Fatalf("provider sees %+v", st)
	}
	patientStream := patient.events("/api/v1/visits/" + string(v.ID) + "/events")
	patientStream.until(func(st stateEvent) bool { return st.Me != nil && st.Me.State == "waiting" })
	if st.Me != nil || len(st.Participants) != 1 {
		t.Fatal("event shapes differ between provider and patient")
	}

	pid := st.Participants[0].ID
	if r := pc.do("POST", "/api/v1/visits/"+string(v.ID)+"/participants/"+string(pid)+"/admit", struct{}{}); r.Status != 200 {
		t.Fatalf("admit: %d %s", r.Status, r.Body)
	}
	got := patientStream.until(func(st stateEvent) bool { return st.Me.State == "admitted" })
	if got.Status != "in_progress" {
		t.Errorf("after admission the visit is %q, want in_progress", got.Status)
	}
	if got.Participants != nil {
		t.Error("the patient's events list other participants")
	}

	// A patient who leaves shows as left; the same browser comes back
	// through the waiting room and is admitted again.
	if r := patient.do("POST", "/api/v1/visits/"+string(v.ID)+"/leave", struct{}{}); r.Status != 200 {
		t.Fatalf("leave: %d %s", r.Status, r.Body)
	}
	providerStream.until(func(st stateEvent) bool { return len(st.Participants) == 1 && st.Participants[0].State == "left" })
	if r := patient.do("POST", "/api/v1/visits/"+string(v.ID)+"/join", struct{}{}); r.code() != "not_admitted" {
		t.Fatalf("join after leaving: %d %s, want not_admitted", r.Status, r.Body)
	}
	if r := patient.redeem(inv.secret(t), dob); r.Status != 200 {
		t.Fatalf("return after leaving: %d %s", r.Status, r.Body)
	}
	providerStream.until(func(st stateEvent) bool { return len(st.Participants) == 1 && st.Participants[0].State == "waiting" })
	if r := pc.do("POST", "/api/v1/visits/"+string(v.ID)+"/participants/"+string(pid)+"/admit", struct{}{}); r.Status != 200 {
		t.Fatalf("admit again: %d %s", r.Status, r.Body)
	}
	patientStream = patient.events("/api/v1/visits/" + string(v.ID) + "/events")
	patientStream.until(func(st stateEvent) bool { return st.Me.State == "admitted" })

	if r := pc.do("POST", "/api/v1/visits/"+string(v.ID)+"/end", struct{}{}); r.Status != 200 {
		t.Fatalf("end: %d %s", r.Status, r.Body)
	}
	patientStream.until(func(st stateEvent) bool { return st.Status == "completed" })
	if _, ok := patientStream.next(); ok {
		t.Error("the patient's stream stayed open after the visit ended")
	}
}
