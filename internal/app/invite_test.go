package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/store"
)

type createdInvite struct {
	InviteURL   string    `json:"invite_url"`
	UsableFrom  time.Time `json:"usable_from"`
	UsableUntil time.Time `json:"usable_until"`
	ICS         string    `json:"ics"`
}

func (ci createdInvite) secret(t *testing.T) string {
	t.Helper()
	_, s, ok := strings.Cut(ci.InviteURL, "#invite=")
	if !ok || strings.Contains(ci.InviteURL, "?") {
		t.Fatalf("invite link %q must carry its secret in the fragment only", ci.InviteURL)
	}
	return s
}

// scheduled creates a patient and a visit starting at start for provider c.
func scheduled(t *testing.T, c *client, start time.Time, dob string) (store.ScheduledVisit, createdInvite) {
	t.Helper()
	r := c.do("POST", "/api/v1/patients", map[string]string{"name": "Pat Example", "date_of_birth": dob, "state": "CA", "email": "pat@example.test"})
	if r.Status != 201 {
		t.Fatalf("create patient: %d %s", r.Status, r.Body)
	}
	var p store.Patient
	r.decode(t, &p)
	r = c.do("POST", "/api/v1/visits", map[string]any{"patient_id": p.ID, "start": start.Format(time.RFC3339), "duration_minutes": 30, "reason": "follow-up"})
	if r.Status != 201 {
		t.Fatalf("schedule: %d %s", r.Status, r.Body)
	}
	var v store.ScheduledVisit
	r.decode(t, &v)
	r = c.do("POST", "/api/v1/visits/"+string(v.ID)+"/invite", struct{}{})
	if r.Status != 201 {
		t.Fatalf("invite: %d %s", r.Status, r.Body)
	}
	var ci createdInvite
	r.decode(t, &ci)
	return v, ci
}

func (c *client) redeem(secret, dob string) response {
	c.t.Helper()
	r := c.do("POST", "/api/v1/invites/redeem", map[string]string{"invite": secret, "date_of_birth": dob})
	if r.Status == 200 {
		var v struct {
			CSRFToken string `json:"csrf_token"`
		}
		c.do("GET", "/api/v1/auth/session", nil).decode(c.t, &v)
		c.csrf = v.CSRFToken
	}
	return r
}

func TestInviteRules(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "p@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	const dob = "1980-02-29"
	start := s.Clock.Now().Add(3 * time.Hour).Truncate(time.Minute)
	v, inv := scheduled(t, pc, start, dob)
	checkInviteWindow(t, inv, start)
	ir := &inviteRig{s: s, pc: pc, patient: s.newClient(t), visit: string(v.ID), dob: dob}

	t.Run("too early", func(t *testing.T) {
		r := ir.patient.redeem(inv.secret(t), dob)
		if r.Status != 409 || r.code() != "too_early" {
			t.Fatalf("2 h before the visit: %d %s, want 409 too_early", r.Status, r.Body)
		}
	})

	s.Clock.Advance(2*time.Hour + 30*time.Minute) // 30 minutes before the visit
	pc.mustLoginAgain(prov)                       // the provider's session idled out meanwhile
	t.Run("wrong date of birth with lockout", func(t *testing.T) { ir.lockout(t, inv) })

	// The provider issues a new link; the old one is revoked.
	var fresh createdInvite
	pc.do("POST", "/api/v1/visits/"+string(v.ID)+"/invite", struct{}{}).decode(t, &fresh)
	t.Run("revoked", func(t *testing.T) {
		if r := ir.patient.redeem(inv.secret(t), dob); r.Status != 404 || r.code() != "invite_revoked" {
			t.Fatalf("old link after a new one: %d %s, want 404 invite_revoked", r.Status, r.Body)
		}
	})
	t.Run("waiting, not admitted", func(t *testing.T) { ir.waiting(t, fresh) })
	t.Run("used on another device", func(t *testing.T) { ir.usedElsewhere(t, fresh) })
	t.Run("admitted, then ended", func(t *testing.T) { ir.admitThenEnd(t, fresh) })

	t.Run("expired", func(t *testing.T) {
		_, inv2 := scheduled(t, pc, s.Clock.Now().Add(2*time.Hour), "1975-06-01")
		s.Clock.Advance(3 * time.Hour) // past its end
		if r := s.newClient(t).redeem(inv2.secret(t), "1975-06-01"); r.Status != 404 || r.code() != "invite_expired" {
			t.Fatalf("after the visit's end: %d %s, want 404 invite_expired", r.Status, r.Body)
		}
	})
}

// checkInviteWindow: a new invite's calendar file holds the event and no
// name, and the link is usable from an hour before start until the end.
func checkInviteWindow(t *testing.T, inv createdInvite, start time.Time) {
	t.Helper()
	if !strings.Contains(inv.ICS, "BEGIN:VEVENT") || strings.Contains(inv.ICS, "Pat Example") {
		t.Errorf("calendar file must hold the event and no patient name:\n%s", inv.ICS)
	}
	if !inv.UsableFrom.Equal(start.Add(-time.Hour)) || !inv.UsableUntil.Equal(start.Add(30*time.Minute)) {
		t.Errorf("invite window %s–%s, want an hour before start until the end", inv.UsableFrom, inv.UsableUntil)
	}
}

// inviteRig is what the steps of TestInviteRules share: the provider's
// client, the patient's browser, the visit and the patient's date of birth.
type inviteRig struct {
	s       *server
	pc      *client // the provider
	patient *client
	visit   string
	dob     string
}

// lockout: four wrong dates of birth say how many tries are left, the
// fifth locks the invite, and none of them admits anyone.
func (ir *inviteRig) lockout(t *testing.T, inv createdInvite) {
	for i := 1; i < 5; i++ {
		r := ir.patient.redeem(inv.secret(t), "1980-03-01")
		if r.Status != 400 || r.code() != "wrong_date_of_birth" {
			t.Fatalf("wrong DOB %d: %d %s", i, r.Status, r.Body)
		}
		if want := fmt.Sprintf(`"tries_left":%d`, 5-i); !strings.Contains(string(r.Body), want) {
			t.Errorf("wrong DOB %d: %s lacks %s", i, r.Body, want)
		}
	}
	if r := ir.patient.redeem(inv.secret(t), "not a date"); r.Status != 403 || r.code() != "invite_locked" {
		t.Fatalf("fifth wrong DOB: %d %s, want 403 invite_locked", r.Status, r.Body)
	}
	if r := ir.patient.redeem(inv.secret(t), ir.dob); r.Status != 403 || r.code() != "invite_locked" {
		t.Fatalf("right DOB after the lock: %d %s, want 403 invite_locked", r.Status, r.Body)
	}
	if n := ir.s.auditCount(t, "invite.redeem", "failure", "wrong date of birth"); n != 5 {
		t.Errorf("%d wrong dates of birth audited, want 5", n)
	}
	var participants int
	_ = ir.s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM participants WHERE visit_id = $1`, ir.visit).Scan(&participants)
	if participants != 0 {
		t.Errorf("failed redemptions created %d participants", participants)
	}
}

// waiting: a redeemed invite puts the patient in the waiting room, and the
// patient cannot join before admission.
func (ir *inviteRig) waiting(t *testing.T, fresh createdInvite) {
	if r := ir.patient.redeem(fresh.secret(t), ir.dob); r.Status != 200 {
		t.Fatalf("redeem: %d %s", r.Status, r.Body)
	}
	var st struct {
		Status string
		Me     store.Participant
	}
	ir.patient.do("GET", "/api/v1/visits/"+ir.visit+"/state", nil).decode(t, &st)
	if st.Status != "waiting" || st.Me.State != "waiting" {
		t.Fatalf("state after redeem = %+v, want waiting", st)
	}
	if r := ir.patient.do("POST", "/api/v1/visits/"+ir.visit+"/join", struct{}{}); r.Status != 409 || r.code() != "not_admitted" {
		t.Fatalf("join before admission: %d %s, want 409 not_admitted", r.Status, r.Body)
	}
}

// usedElsewhere: a redeemed invite refuses a second device but lets the
// first browser come back.
func (ir *inviteRig) usedElsewhere(t *testing.T, fresh createdInvite) {
	other := ir.s.newClient(t)
	if r := other.redeem(fresh.secret(t), ir.dob); r.Status != 409 || r.code() != "invite_used" {
		t.Fatalf("second device: %d %s, want 409 invite_used", r.Status, r.Body)
	}
	// The first browser may come back (reload) while its session lives.
	if r := ir.patient.redeem(fresh.secret(t), ir.dob); r.Status != 200 {
		t.Fatalf("same browser again: %d %s", r.Status, r.Body)
	}
}

// admitThenEnd: the provider admits the waiting patient, who joins; once
// the visit ends, the patient's session and link are void and the visit
// is completed.
func (ir *inviteRig) admitThenEnd(t *testing.T, fresh createdInvite) {
	var st struct{ Participants []store.Participant }
	ir.pc.do("GET", "/api/v1/visits/"+ir.visit+"/state", nil).decode(t, &st)
	if len(st.Participants) != 1 || st.Participants[0].State != "waiting" {
		t.Fatalf("provider sees %+v, want one waiting patient", st.Participants)
	}
	pid := st.Participants[0].ID
	if r := ir.pc.do("POST", "/api/v1/visits/"+ir.visit+"/participants/"+string(pid)+"/admit", struct{}{}); r.Status != 200 {
		t.Fatalf("admit: %d %s", r.Status, r.Body)
	}
	if r := ir.patient.do("POST", "/api/v1/visits/"+ir.visit+"/join", struct{}{}); r.Status != 200 {
		t.Fatalf("join after admission: %d %s", r.Status, r.Body)
	}
	if r := ir.pc.do("POST", "/api/v1/visits/"+ir.visit+"/end", struct{}{}); r.Status != 200 {
		t.Fatalf("end: %d %s", r.Status, r.Body)
	}
	if r := ir.patient.do("POST", "/api/v1/visits/"+ir.visit+"/join", struct{}{}); r.Status != 401 {
		t.Fatalf("join after the end: %d, want 401 (session ended)", r.Status)
	}
	if r := ir.patient.redeem(fresh.secret(t), ir.dob); r.Status != 404 || r.code() != "visit_ended" {
		t.Fatalf("link reused after the end: %d %s, want 404 visit_ended", r.Status, r.Body)
	}
	var status string
	var started, ended *time.Time
	_ = ir.s.Pool.QueryRow(context.Background(), `SELECT status, started_at, ended_at FROM visits WHERE id = $1`, ir.visit).Scan(&status, &started, &ended)
	if status != "completed" || started == nil || ended == nil {
		t.Errorf("visit %s started %v ended %v, want completed with both times", status, started, ended)
	}
}

func TestScheduleBadInputChangesNothing(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "p@clinic.test", "provider")
	other := s.enrol(t, "o@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	start := s.Clock.Now().Add(24 * time.Hour).Truncate(time.Minute)
	v, _ := scheduled(t, pc, start, "1990-01-01")

	oc := s.newClient(t)
	oc.mustLogin(other)
	var othersPatient store.Patient
	oc.do("POST", "/api/v1/patients", map[string]string{"name": "Someone Else", "date_of_birth": "1991-01-01"}).decode(t, &othersPatient)

	count := func() int {
		var n int
		_ = s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM visits`).Scan(&n)
		return n
	}
	before := count()
	var mine store.Patient
	pc.do("POST", "/api/v1/patients", map[string]string{"name": "Second", "date_of_birth": "1992-01-01"}).decode(t, &mine)
	cases := []struct {
		name string
		body map[string]any
		code string
	}{
		{"in the past", map[string]any{"patient_id": mine.ID, "start": s.Clock.Now().Add(-time.Hour).Format(time.RFC3339), "duration_minutes": 30}, "in_the_past"},
		{"overlapping", map[string]any{"patient_id": mine.ID, "start": start.Add(15 * time.Minute).Format(time.RFC3339), "duration_minutes": 30}, "overlap"},
		{"unknown patient", map[string]any{"patient_id": "00000000-0000-4000-8000-000000000000", "start": start.Add(2 * time.Hour).Format(time.RFC3339), "duration_minutes": 30}, "unknown_patient"},
		{"another provider's patient", map[string]any{"patient_id": othersPatient.ID, "start": start.Add(2 * time.Hour).Format(time.RFC3339), "duration_minutes": 30}, "unknown_patient"},
		{"bad duration", map[string]any{"patient_id": mine.ID, "start": start.Add(2 * time.Hour).Format(time.RFC3339), "duration_minutes": 2}, "bad_duration"},
		{"bad time", map[string]any{"patient_id": mine.ID, "start": "tomorrow at nine", "duration_minutes": 30}, "bad_start"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := pc.do("POST", "/api/v1/visits", tc.body)
			if r.Status < 400 || r.code() != tc.code {
				t.Fatalf("%d %s, want code %s", r.Status, r.Body, tc.code)
			}
		})
	}
	if after := count(); after != before {
		t.Fatalf("bad requests created %d visits", after-before)
	}
	// Rescheduling onto an overlap and a bad patient record change nothing either.
	v2start := start.Add(3 * time.Hour)
	var v2 store.ScheduledVisit
	pc.do("POST", "/api/v1/visits", map[string]any{"patient_id": mine.ID, "start": v2start.Format(time.RFC3339), "duration_minutes": 30}).decode(t, &v2)
	if r := pc.do("POST", "/api/v1/visits/"+string(v2.ID)+"/reschedule", map[string]any{"start": start.Format(time.RFC3339), "duration_minutes": 30}); r.code() != "overlap" {
		t.Fatalf("reschedule onto another visit: %d %s", r.Status, r.Body)
	}
	var got time.Time
	_ = s.Pool.QueryRow(context.Background(), `SELECT scheduled_start FROM visits WHERE id = $1`, string(v2.ID)).Scan(&got)
	if !got.Equal(v2start) {
		t.Fatalf("a refused reschedule moved the visit to %s", got)
	}
	if r := pc.do("POST", "/api/v1/patients", map[string]string{"name": "X", "date_of_birth": "2999-01-01"}); r.code() != "bad_date_of_birth" {
		t.Fatalf("future date of birth: %d %s", r.Status, r.Body)
	}
	if r := pc.do("POST", "/api/v1/patients", map[string]string{"name": "X", "date_of_birth": "1990-01-01", "state": "ZZ"}); r.code() != "bad_state" {
		t.Fatalf("unknown state: %d %s", r.Status, r.Body)
	}
	_ = v
}
