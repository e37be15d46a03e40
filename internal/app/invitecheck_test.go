package app_test

import (
	"strings"
	"testing"
	"time"
)

// check asks whether secret was used on another device and returns the
// raw answer.
func (c *client) check(secret string) response {
	c.t.Helper()
	return c.do("POST", "/api/v1/invites/check", map[string]string{"invite": secret})
}

// A second device opening a used invite link is told so before it is asked
// for the date of birth; the check answers "used" or "not used" (and the
// link's language, English for all of these) and nothing else, whatever the state of the link or its visit, and it is rate limited
// per address together with redeem.
func TestInviteUsedCheckedBeforeDOB(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "p@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	const dob = "1966-10-10"
	notUsed, used := `{"lang":"en","used":false}`, `{"lang":"en","used":true}`
	answer := func(t *testing.T, c *client, secret, want, what string) {
		t.Helper()
		r := c.check(secret)
		if r.Status != 200 || strings.TrimSpace(string(r.Body)) != want {
			t.Errorf("%s: check = %d %s, want 200 %s", what, r.Status, r.Body, want)
		}
	}

	_, inv := scheduled(t, pc, s.Clock.Now().Add(30*time.Minute), dob)
	first, second := s.newClient(t), s.newClient(t)
	answer(t, second, inv.secret(t), notUsed, "fresh link")
	if r := first.redeem(inv.secret(t), dob); r.Status != 200 {
		t.Fatalf("first device: %d %s", r.Status, r.Body)
	}
	answer(t, second, inv.secret(t), used, "second device")
	answer(t, first, inv.secret(t), notUsed, "the browser that used it")
	if n := s.auditCount(t, "invite.check", "denied", "invite_used"); n != 1 {
		t.Errorf("%d used-link checks audited, want 1", n)
	}

	// Nothing else shows through: states a redeem would name (unknown,
	// malformed, withdrawn, too early, locked, of a cancelled visit) all
	// answer like a fresh link.
	stranger := s.newClient(t)
	answer(t, stranger, "no-such-invite", notUsed, "unknown link")
	answer(t, stranger, strings.Repeat("x", 65), notUsed, "overlong link")
	withdrawnVisit, withdrawn := scheduled(t, pc, s.Clock.Now().Add(90*time.Minute), dob)
	if r := pc.do("POST", "/api/v1/visits/"+string(withdrawnVisit.ID)+"/invite/revoke", struct{}{}); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	_, early := scheduled(t, pc, s.Clock.Now().Add(5*time.Hour), dob)
	_, locked := scheduled(t, pc, s.Clock.Now(), dob)
	for range 5 {
		stranger.redeem(locked.secret(t), "1900-01-01")
	}
	if r := stranger.redeem(locked.secret(t), dob); r.code() != "invite_locked" {
		t.Fatalf("locking the link: %d %s", r.Status, r.Body)
	}
	cancelledVisit, cancelled := scheduled(t, pc, s.Clock.Now().Add(time.Hour), dob)
	if r := pc.do("POST", "/api/v1/visits/"+string(cancelledVisit.ID)+"/cancel", struct{}{}); r.Status != 200 {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	for what, secret := range map[string]string{"withdrawn": withdrawn.secret(t), "too early": early.secret(t),
		"locked": locked.secret(t), "cancelled visit": cancelled.secret(t)} {
		answer(t, stranger, secret, notUsed, what)
	}

	// One address gets a burst of tries, checks and redeems together.
	limited := false
	for i := 0; i < 100 && !limited; i++ {
		r := stranger.check("no-such-invite")
		if r.Status == 429 {
			limited = true
			if r.code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
				t.Errorf("rate limited check: %d %s, Retry-After %q", r.Status, r.Body, r.Header.Get("Retry-After"))
			}
		}
	}
	if !limited {
		t.Fatal("100 checks in a row from one address were all answered")
	}
	if r := second.redeem(inv.secret(t), dob); r.Status != 429 || r.code() != "rate_limited" {
		t.Errorf("redeem after the address's burst: %d %s, want 429 rate_limited", r.Status, r.Body)
	}
	s.Clock.Advance(time.Minute)
	answer(t, second, inv.secret(t), used, "after waiting")
}

// The provider chooses the invite's language: the link's check tells the
// join page, the calendar file speaks it, the patient's session carries
// it, and a language without a catalogue is refused.
func TestInviteLanguage(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "p@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	v, _ := scheduled(t, pc, s.Clock.Now().Add(30*time.Minute), "1970-01-02")
	r := pc.do("POST", "/api/v1/visits/"+string(v.ID)+"/invite", map[string]string{"lang": "es"})
	var ci createdInvite
	var lang struct {
		Lang string `json:"lang"`
	}
	r.decode(t, &ci)
	r.decode(t, &lang)
	if r.Status != 201 || lang.Lang != "es" || !strings.Contains(ci.ICS, "SUMMARY;LANGUAGE=es:Consulta por video") {
		t.Fatalf("Spanish invite: %d %s", r.Status, r.Body)
	}
	if c := s.newClient(t).check(ci.secret(t)); strings.TrimSpace(string(c.Body)) != `{"lang":"es","used":false}` {
		t.Errorf("check of a Spanish link: %d %s", c.Status, c.Body)
	}
	for _, bad := range []string{"xx", "ES", "es-419-x", strings.Repeat("e", 300)} {
		if r := pc.do("POST", "/api/v1/visits/"+string(v.ID)+"/invite", map[string]string{"lang": bad}); r.Status != 400 || r.code() != "bad_language" {
			t.Errorf("lang %.20q: %d %s, want 400 bad_language", bad, r.Status, r.Body)
		}
	}
	// The refused languages made no link: the Spanish one still works.
	patient := s.newClient(t)
	if r := patient.redeem(ci.secret(t), "1970-01-02"); r.Status != 200 {
		t.Fatalf("the Spanish link after the refusals: %d %s", r.Status, r.Body)
	}
	// The patient's session carries it: a page opened in a new tab speaks it.
	patient.do("GET", "/api/v1/auth/session", nil).decode(t, &lang)
	if lang.Lang != "es" {
		t.Errorf("the patient's session says language %q, want es", lang.Lang)
	}
	// Staff sessions carry none.
	lang.Lang = ""
	pc.do("GET", "/api/v1/auth/session", nil).decode(t, &lang)
	if lang.Lang != "" {
		t.Errorf("a provider's session says language %q", lang.Lang)
	}
}
