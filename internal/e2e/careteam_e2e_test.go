package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/store"
)

// The care team in the browser (issue 17): three people in one call, and
// invites that are revoked one by one.

// teamTimeout bounds the waits of three browsers joining and decoding one
// another: on a shared two-core machine they take far longer than two.
const teamTimeout = 120 * time.Second

// inviteeLink asks the provider's API for an invitee's own link.
func inviteeLink(t *testing.T, prov *apiClient, visit, role, name string) (link, inviteID string) {
	t.Helper()
	var inv struct {
		InviteURL string `json:"invite_url"`
		InviteID  string `json:"invite_id"`
	}
	decodeJSON(t, prov.must("POST", "/api/v1/visits/"+visit+"/invitees", map[string]string{"role": role, "name": name}, 201).Body, &inv)
	return inv.InviteURL, inv.InviteID
}

// deviceCheckThenWait passes the device check on b and waits in the
// waiting room.
func deviceCheckThenWait(t *testing.T, b *Browser) {
	t.Helper()
	ctx := t.Context()
	b.WaitFor(t, ctx, `document.body.dataset.state === 'devices' && !document.getElementById('devices-ok').disabled
    && document.getElementById('preview').videoWidth > 0`, pageTimeout)
	b.Click(t, "#tone")
	b.WaitFor(t, ctx, `!document.getElementById('heard').hidden`, pageTimeout)
	b.Click(t, "#heard-yes")
	b.Click(t, "#devices-ok")
	b.WaitFor(t, ctx, `document.body.dataset.state === 'waiting' && window.openvisit.visitState !== null
    && window.openvisit.visitState.me.state === 'waiting'`, pageTimeout)
}

// mediaFromEach is a page predicate: for every participant in ids, the
// page shows their tile and decodes their own video track (frames, a
// width) and plays their own audio track with energy — per track, so that
// media from one participant does not stand in for another's.
func mediaFromEach(ids ...string) string {
	return fmt.Sprintf(`(async () => {
  const c = window.openvisit && window.openvisit.client;
  if (!c) return false;
  const stats = [];
  (await c.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') stats.push(s); });
  for (const id of %s) {
    const tile = document.querySelector('[data-participant="' + id + '"]');
    if (!tile) return false;
    const v = tile.querySelector('video'), a = tile.querySelector('audio');
    if (!v || !a || !v.srcObject || !a.srcObject || a.muted || a.paused || v.videoWidth === 0) return false;
    const vt = new Set(v.srcObject.getVideoTracks().map((t) => t.id));
    const at = new Set(a.srcObject.getAudioTracks().map((t) => t.id));
    if (!stats.some((s) => s.kind === 'video' && vt.has(s.trackIdentifier) && s.framesDecoded > 0 && s.frameWidth > 0)) return false;
    if (!stats.some((s) => s.kind === 'audio' && at.has(s.trackIdentifier) && s.totalAudioEnergy > 0)) return false;
  }
  return true;
})()`, jsStrings(ids))
}

func jsStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// admitRole admits the invitee of role waiting on the provider's call
// page.
func admitRole(t *testing.T, provider *Browser, role string) {
	t.Helper()
	sel := fmt.Sprintf(`#room-list [data-state="waiting"][data-role=%q] [data-action="admit"]`, role)
	provider.WaitFor(t, t.Context(), fmt.Sprintf(`document.querySelector(%q) !== null`, sel), pageTimeout)
	provider.Click(t, sel)
	provider.WaitFor(t, t.Context(), fmt.Sprintf(`document.querySelector('#room-list [data-state="admitted"][data-role=%q]') !== null`, role), pageTimeout)
}

// fetchStatus is what GET path answers to the page's own session.
func fetchStatus(t *testing.T, b *Browser, path string) int {
	t.Helper()
	return Eval[int](t, b, fmt.Sprintf(`fetch(%q, {credentials: 'same-origin'}).then((r) => r.status)`, path))
}

// TestE2EInterpreterJoins: a provider, the patient (by their invite and
// date of birth) and an interpreter (by their own invite, asked no date of
// birth) in three Chromium pages on small screens; admitted from the
// waiting room, each page decodes the other two (video and audio, per
// participant), names them on their tiles, lights the active speaker's
// tile and pins a tile large; the interpreter's session
// cannot reach the patient's record nor the visit's (404).
func TestE2EInterpreterJoins(t *testing.T) {
	ctx := t.Context()
	srv := StartServer(t, nil)
	pool := openPool(t, srv)
	prov, _ := staffClient(t, srv, pool, store.RoleProvider)
	v, patientLink := scheduleByAPI(t, prov, patientName, patientDOB)
	visit := string(v.ID)
	interpLink, _ := inviteeLink(t, prov, visit, store.InviteeInterpreter, "Ines Interpreter")
	if !strings.Contains(interpLink, "&role=interpreter") {
		t.Fatalf("the interpreter's link %q does not say it needs no date of birth", redactFragment(interpLink))
	}

	// Small screens: small tiles, small simulcast layers, less work for
	// three browsers on two cores.
	open := func(name string) *Browser {
		b := NewBrowser(t, WithName(name), WithFlag("hide-scrollbars", true))
		b.SetViewport(t, 360, 740)
		return b
	}
	provider, patient, interp := open("provider"), open("patient"), open("interpreter")
	signInBrowser(t, provider, srv, prov)
	provider.Navigate(t, srv.URL+"/call?visit="+visit)
	provider.WaitFor(t, ctx, `document.body.dataset.state === 'connected' && !document.getElementById('room').hidden`, teamTimeout)

	patientJoins(t, patient, patientLink, false)
	interp.Navigate(t, interpLink)
	interp.WaitFor(t, ctx, `document.body.dataset.state === 'devices' || document.body.dataset.state === 'identity'`, pageTimeout)
	if st := Eval[string](t, interp, `document.body.dataset.state`); st != "devices" {
		t.Fatalf("the interpreter reached %q, want the device check without a date of birth", st)
	}
	deviceCheckThenWait(t, interp)

	// One at a time: each admitted page connects before the next is let
	// in, so that two browsers do not negotiate at once on a busy machine.
	pages := []*Browser{provider, patient, interp}
	self := map[*Browser]string{provider: Eval[string](t, provider, `window.openvisit.self`)}
	for i, b := range pages[1:] {
		admitRole(t, provider, []string{store.InviteePatient, store.InviteeInterpreter}[i])
		b.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected' && !!window.openvisit.self`, teamTimeout)
		self[b] = Eval[string](t, b, `window.openvisit.self`)
		t.Logf("%s connected (%d of 2)", b.Name, i+1)
	}
	for _, b := range pages {
		var others []string
		for _, o := range pages {
			if o != b {
				others = append(others, self[o])
			}
		}
		if err := b.Poll(ctx, mediaFromEach(others...), teamTimeout); err != nil {
			for _, x := range pages {
				x.Dump(t, "media", inboundSummary)
			}
			t.Fatalf("%s: media from the other two: %v", b.Name, err)
		}
	}
	// Names and roles on the tiles, and the grid's count.
	provider.WaitFor(t, ctx, fmt.Sprintf(`(() => { const t = document.querySelector('[data-participant=%q] figcaption');
    return !!t && t.textContent.includes('Ines Interpreter') && t.textContent.includes('Interpreter'); })()`, self[interp]), pageTimeout)
	if n := Eval[string](t, patient, `document.getElementById('tiles').dataset.count`); n != "3" {
		t.Errorf("patient: the grid counts %q tiles, want 3", n)
	}
	// The active speaker: the fake microphones beep, so someone's tile
	// lights up; pinning a tile makes it span the grid's row.
	provider.WaitFor(t, ctx, `document.querySelector('#tiles .tile.speaking') !== null`, teamTimeout)
	provider.Click(t, fmt.Sprintf(`[data-participant=%q] button.pin`, self[interp]))
	provider.WaitFor(t, ctx, fmt.Sprintf(`(() => { const t = document.querySelector('[data-participant=%q]');
    return t.classList.contains('pinned') && document.getElementById('tiles').classList.contains('has-pinned')
      && t.querySelector('button.pin').getAttribute('aria-pressed') === 'true'
      && t.getBoundingClientRect().width > document.querySelector('#tiles .tile.self').getBoundingClientRect().width; })()`, self[interp]), pageTimeout)
	screenshot(t, provider, "call-three-pinned-360.png")
	screenshot(t, patient, "call-three-360.png")

	// The interpreter cannot reach the patient's record, nor the visit's.
	for _, path := range []string{"/api/v1/patients/" + v.PatientID, "/api/v1/visits/" + visit} {
		if got := fetchStatus(t, interp, path); got != 404 {
			t.Errorf("interpreter: GET %s = %d, want 404", path, got)
		}
	}
	// The patient reaches their visit (the refusal is the interpreter's).
	if got := fetchStatus(t, patient, "/api/v1/visits/"+visit); got != 200 {
		t.Errorf("patient: GET their visit = %d, want 200", got)
	}
	if logs := srv.Logs(); strings.Contains(logs, "Ines Interpreter") || strings.Contains(logs, patientName) {
		t.Error("the server log holds an invitee's or the patient's name")
	}
}

// TestE2ECaregiverAndPatientSeparateInvites: the patient and a caregiver
// each have their own link; both wait in the waiting room (the caregiver
// after the patient's date of birth). Revoking the caregiver's invite
// takes the caregiver out and leaves the patient's link and place alone:
// the patient is admitted and joins the call; the caregiver's link is
// refused afterwards.
func TestE2ECaregiverAndPatientSeparateInvites(t *testing.T) {
	ctx := t.Context()
	srv := StartServer(t, nil)
	pool := openPool(t, srv)
	prov, _ := staffClient(t, srv, pool, store.RoleProvider)
	v, patientLink := scheduleByAPI(t, prov, patientName, patientDOB)
	visit := string(v.ID)
	carerLink, carerInvite := inviteeLink(t, prov, visit, store.InviteeCaregiver, "Casey Carer")
	if strings.Contains(carerLink, "role=") {
		t.Errorf("the caregiver's link skips the date of birth")
	}

	carer := NewBrowser(t, WithName("caregiver"))
	carer.SetViewport(t, 360, 740)
	patient := NewBrowser(t, WithName("patient"))
	patient.SetViewport(t, 360, 740)
	patientJoins(t, carer, carerLink, false) // the caregiver gives the patient's date of birth
	patientJoins(t, patient, patientLink, false)

	prov.must("POST", "/api/v1/visits/"+visit+"/invitees/"+carerInvite+"/revoke", struct{}{}, 200)
	carer.WaitFor(t, ctx, `document.body.dataset.state === 'ended' || document.body.dataset.state === 'refused'`, pageTimeout)
	if text := Eval[string](t, carer, `document.getElementById('done').innerText`); !strings.Contains(text, "removed") {
		t.Errorf("the caregiver is told %q, want that they were removed", text)
	}

	// The patient is still waiting, and is admitted into the call.
	var st struct {
		Participants []store.Participant `json:"participants"`
	}
	decodeJSON(t, prov.must("GET", "/api/v1/visits/"+visit+"/state", nil, 200).Body, &st)
	var pid string
	for _, p := range st.Participants {
		switch {
		case p.Role == store.InviteePatient && p.State == "waiting":
			pid = string(p.ID)
		case p.Role == store.InviteeCaregiver && p.State != "removed":
			t.Errorf("the caregiver is %s after their invite was revoked", p.State)
		}
	}
	if pid == "" {
		t.Fatalf("the patient is not waiting after the caregiver's invite was revoked: %+v", st.Participants)
	}
	prov.must("POST", "/api/v1/visits/"+visit+"/participants/"+pid+"/admit", struct{}{}, 200)
	patient.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)

	// The caregiver's link no longer opens anything; a fresh browser is
	// refused too.
	again := NewBrowser(t, WithName("caregiver-again"))
	again.Navigate(t, carerLink)
	again.WaitFor(t, ctx, `document.body.dataset.state === 'identity' || document.body.dataset.state === 'refused'`, pageTimeout)
	if Eval[string](t, again, `document.body.dataset.state`) == "identity" {
		fillDOB(t, again, patientDOB)
	}
	again.WaitFor(t, ctx, `document.body.dataset.state === 'refused'`, pageTimeout)
	if e := Eval[string](t, again, `window.openvisit.lastError`); e != "invite_revoked" && e != "invite_used" {
		t.Errorf("the revoked caregiver link: lastError %q, want invite_revoked (or invite_used)", e)
	}
}
