package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/store"
)

// scheduleByAPI makes a patient and a visit starting in ten minutes for
// the provider behind prov, and returns the visit and its invite link.
func scheduleByAPI(t *testing.T, prov *apiClient, name, dob string) (store.ScheduledVisit, string) {
	t.Helper()
	var p store.Patient
	decodeJSON(t, prov.must("POST", "/api/v1/patients", map[string]string{"name": name, "date_of_birth": dob,
		"email": "patient@example.test", "state": "CA"}, 201).Body, &p)
	var v store.ScheduledVisit
	decodeJSON(t, prov.must("POST", "/api/v1/visits", map[string]any{"patient_id": p.ID,
		"start": time.Now().Add(10 * time.Minute).Format(time.RFC3339), "duration_minutes": 30, "reason": "follow-up"}, 201).Body, &v)
	var inv struct {
		InviteURL string `json:"invite_url"`
	}
	decodeJSON(t, prov.must("POST", "/api/v1/visits/"+string(v.ID)+"/invite", struct{}{}, 201).Body, &inv)
	return v, inv.InviteURL
}

// redeemByHTTP redeems an invite link as a first device would, outside any
// browser.
func redeemByHTTP(t *testing.T, srv *Server, link, dob string) {
	t.Helper()
	_, secret, _ := strings.Cut(link, "#invite=")
	body, _ := json.Marshal(map[string]string{"invite": secret, "date_of_birth": dob})
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/invites/redeem", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", srv.URL)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the server's self-signed test certificate
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("first device: redeem = %d", resp.StatusCode)
	}
}

// A second device opening an invite link already used elsewhere is told so
// at once, before any date of birth is asked, and is told nothing about the
// visit; a fresh link still asks for the date of birth.
func TestE2EUsedInviteOnSecondDevice(t *testing.T) {
	srv := StartServer(t, nil)
	ctx := t.Context()
	pool := openPool(t, srv)
	prov, _ := staffClient(t, srv, pool, store.RoleProvider)
	const name, dob = "Avery Quinn", "1979-11-23"
	v, link := scheduleByAPI(t, prov, name, dob)
	redeemByHTTP(t, srv, link, dob)

	b := NewBrowser(t, WithName("second-device"))
	b.Navigate(t, link)
	b.WaitFor(t, ctx, `document.body.dataset.state === 'refused' || document.body.dataset.state === 'identity'`, pageTimeout)
	if st := Eval[string](t, b, `document.body.dataset.state`); st != "refused" {
		t.Fatalf("the second device reached %q, want refused before the date of birth", st)
	}
	if !Eval[bool](t, b, `document.getElementById('identity').hidden`) {
		t.Error("the date-of-birth form is shown on the second device")
	}
	text := Eval[string](t, b, `document.getElementById('done').innerText`)
	if !strings.Contains(text, "already used on another device") || !strings.Contains(text, "Ask your clinic for a new link") {
		t.Errorf("the second device is told %q", text)
	}
	page := Eval[string](t, b, `document.body.innerText`)
	when := v.ScheduledStart.Local().Format("15:04")
	for _, secret := range []string{name, "Avery", "follow-up", when} {
		if strings.Contains(page, secret) {
			t.Errorf("the refusal reveals %q about the visit", secret)
		}
	}
	if e := Eval[string](t, b, `window.openvisit.lastError`); e != "invite_used" {
		t.Errorf("lastError %q, want invite_used", e)
	}
	screenshot(t, b, "join-used-elsewhere.png")

	// A new link for the same visit still asks for the date of birth.
	var fresh struct {
		InviteURL string `json:"invite_url"`
	}
	decodeJSON(t, prov.must("POST", "/api/v1/visits/"+string(v.ID)+"/invite", struct{}{}, 201).Body, &fresh)
	b.Navigate(t, "about:blank") // from /join, a link differing in its fragment only would not reload
	b.Navigate(t, fresh.InviteURL)
	b.WaitFor(t, ctx, `document.body.dataset.state === 'identity' && !document.getElementById('identity').hidden`, pageTimeout)
}
