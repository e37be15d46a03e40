package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// countPeerConnections makes every page the browser opens count the
// RTCPeerConnections it creates in window.__pcCount, from before any page
// script runs.
func countPeerConnections(t *testing.T, b *Browser) {
	t.Helper()
	const js = `(() => {
  window.__pcCount = 0;
  const P = window.RTCPeerConnection;
  if (!P) return;
  window.RTCPeerConnection = new Proxy(P, { construct(target, args) { window.__pcCount++; return Reflect.construct(target, args); } });
})();`
	ctx, cancel := context.WithTimeout(b.Context(), DefaultTimeout)
	defer cancel()
	err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return chromedp.Void{}, err
	})
	if err != nil {
		t.Fatalf("%s: install the peer connection counter: %v", b.Name, err)
	}
}

// setValue sets a form control's value in the page and fires input and
// change events (for date, datetime-local and select controls, which key
// events fill differently per locale).
func setValue(t *testing.T, b *Browser, selector, value string) {
	t.Helper()
	ok := Eval[bool](t, b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false;
  e.value = %q; e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));
  return e.value === %q; })()`, selector, value, value))
	if !ok {
		t.Fatalf("%s: could not set %s to %q", b.Name, selector, value)
	}
}

// enrolTOTP enrols a staff account from its setup link with a code of the
// previous 30 s step (Validate accepts ±1 step), so that the current step
// is still unused for signing in, and returns the authenticator key.
func enrolTOTP(t *testing.T, b *Browser, link, password string) string {
	t.Helper()
	ctx := t.Context()
	b.Navigate(t, link)
	b.WaitFor(t, ctx, `document.body.dataset.state === 'ready'`, pageTimeout)
	secret := strings.ReplaceAll(Eval[string](t, b, `document.getElementById('secret').textContent`), " ", "")
	b.Fill(t, "#password", password)
	b.Fill(t, "#password2", password)
	code, err := totp.Code(secret, time.Now().Add(-30*time.Second))
	if err != nil {
		t.Fatalf("%s: TOTP code: %v", b.Name, err)
	}
	submitSetup(t, b, code)
	leaveSetup(t, b)
	return secret
}

// signInTOTP signs in with an authenticator code computed from the key.
func signInTOTP(t *testing.T, b *Browser, email, password, secret, wantPath string) {
	t.Helper()
	code, err := totp.Code(secret, time.Now())
	if err != nil {
		t.Fatalf("%s: TOTP code: %v", b.Name, err)
	}
	b.Fill(t, "#email", email)
	b.Fill(t, "#password", password)
	b.Fill(t, "#code", code)
	b.Click(t, "#submit")
	b.WaitFor(t, t.Context(), fmt.Sprintf(`location.pathname === %q && document.body.dataset.loaded === 'true'`, wantPath), pageTimeout)
}

// visitSetup is a provider signed in on /provider with a patient and a
// visit starting in five minutes, scheduled through the page, and the
// patient's invite link taken from the page.
type visitSetup struct {
	srv      *Server
	provider *Browser
	visitID  string
	link     string
}

const (
	patientName = "Jordan Rivera"
	patientDOB  = "1984-07-09"
)

func scheduleVisit(t *testing.T, shots bool) visitSetup {
	t.Helper()
	return scheduleVisitOn(t, StartServer(t, nil), shots)
}

// scheduleVisitOn is scheduleVisit on a server the test started (for
// example with the recorder role).
func scheduleVisitOn(t *testing.T, srv *Server, shots bool) visitSetup {
	t.Helper()
	ctx := t.Context()
	pool := openPool(t, srv)
	const email, password = "robin.provider@clinic.test", "copper violin 58 harbor mist"
	_, setup := createUser(t, pool, email, "Robin Provider", store.RoleProvider)

	provider := NewBrowser(t, WithName("provider"), WithFlag("hide-scrollbars", true))
	provider.SetViewport(t, 1280, 900)
	secret := enrolTOTP(t, provider, signaling.SetupURL(srv.URL, setup), password)
	signInTOTP(t, provider, email, password, secret, "/provider")

	// A new patient, through the form.
	provider.Click(t, "#patient-new")
	provider.Fill(t, "#p-name", patientName)
	setValue(t, provider, "#p-dob", patientDOB)
	provider.Fill(t, "#p-email", "jordan@example.test")
	provider.Fill(t, "#p-state", "CA")
	provider.Click(t, "#p-submit")
	provider.WaitFor(t, ctx, `!document.getElementById('patient-chosen').hidden
    && document.getElementById('patient-chosen-text').textContent.includes('Jordan Rivera')`, pageTimeout)

	// A visit in five minutes: its link is usable from an hour before.
	start := Eval[string](t, provider, `(() => { const d = new Date(Date.now() + 5 * 60000); const p = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes()); })()`)
	setValue(t, provider, "#visit-start", start)
	setValue(t, provider, "#visit-duration", "30")
	provider.Fill(t, "#visit-reason", "Follow-up on lab results")
	provider.Click(t, "#schedule-submit")
	provider.WaitFor(t, ctx, `document.querySelector('#visits li[data-status="scheduled"]') !== null`, pageTimeout)
	visitID := Eval[string](t, provider, `document.querySelector('#visits li[data-status="scheduled"]').dataset.visitId`)
	if !Eval[bool](t, provider, `document.querySelector('#visits li[data-status="scheduled"]').textContent.includes('Jordan Rivera')`) {
		t.Error("provider: the schedule does not name the patient")
	}

	// The patient's link, from the page.
	provider.Click(t, `#visits li[data-status="scheduled"] [data-action="invite"]`)
	provider.WaitFor(t, ctx, fmt.Sprintf(`document.getElementById('invite-link').value.startsWith(%q)`, srv.URL+"/join#invite="), pageTimeout)
	link := Eval[string](t, provider, `document.getElementById('invite-link').value`)
	if Eval[bool](t, provider, `document.getElementById('invite-ics').hidden`) {
		t.Error("provider: no calendar file offered for a scheduled visit")
	}
	if shots {
		provider.SetViewport(t, 360, 740)
		screenshot(t, provider, "schedule-360.png")
		provider.SetViewport(t, 1280, 900)
	}
	return visitSetup{srv: srv, provider: provider, visitID: visitID, link: link}
}

// patientJoins walks a patient browser through the invite: date of birth,
// device check, waiting room.
func patientJoins(t *testing.T, b *Browser, link string, shots bool) {
	t.Helper()
	ctx := t.Context()
	b.Navigate(t, link)
	b.WaitFor(t, ctx, `document.body.dataset.state === 'identity'`, pageTimeout)
	if h := Eval[string](t, b, `location.hash`); h != "" {
		t.Errorf("%s: the invite secret stays in the address bar", b.Name)
	}
	if shots {
		screenshot(t, b, "join-360.png")
	}
	fillDOB(t, b, patientDOB)
	b.WaitFor(t, ctx, `document.body.dataset.state === 'devices' && !document.getElementById('devices-ok').disabled
    && document.getElementById('preview').videoWidth > 0`, pageTimeout)
	// The speaker test: a tone, then the question.
	b.Click(t, "#tone")
	b.WaitFor(t, ctx, `!document.getElementById('heard').hidden`, pageTimeout)
	b.Click(t, "#heard-yes")
	if shots {
		screenshot(t, b, "device-check-360.png")
	}
	b.Click(t, "#devices-ok")
	b.WaitFor(t, ctx, `document.body.dataset.state === 'waiting' && window.openvisit.visitState !== null
    && window.openvisit.visitState.me.state === 'waiting'`, pageTimeout)
}

// fillDOB types a YYYY-MM-DD date of birth into the join page and submits.
func fillDOB(t *testing.T, b *Browser, dob string) {
	t.Helper()
	parts := strings.Split(dob, "-")
	setValue(t, b, "#dob-month", parts[1])
	b.Fill(t, "#dob-day", strings.TrimPrefix(parts[2], "0"))
	b.Fill(t, "#dob-year", parts[0])
	b.Click(t, "#dob-submit")
}

// admitted waits until the provider's page shows the patient waiting and
// admits them.
func admit(t *testing.T, provider *Browser) {
	t.Helper()
	provider.WaitFor(t, t.Context(), `document.querySelector('#room-list [data-action="admit"]') !== null`, pageTimeout)
	provider.Click(t, `#room-list [data-action="admit"]`)
}

// framesAdvance is a page predicate: the video frames decoded on this page
// rose since the previous poll (window.__frames holds the last count).
const framesAdvance = `(async () => {
  const c = window.openvisit && window.openvisit.client;
  if (!c) return false;
  let f = 0;
  (await c.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') f += s.framesDecoded || 0; });
  const prev = window.__frames;
  window.__frames = f;
  return prev !== undefined && f > prev;
})()`

func TestE2EScheduledVisitWaitingRoom(t *testing.T) {
	ctx := t.Context()
	start := time.Now()
	v := scheduleVisit(t, true)
	provider := v.provider
	t.Logf("visit scheduled after %v", time.Since(start).Round(time.Millisecond))

	// The provider opens the visit: the call page with the waiting room.
	provider.Click(t, fmt.Sprintf(`#visits li[data-visit-id=%q] [data-action="join"]`, v.visitID))
	provider.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'
    && !document.getElementById('room').hidden`, callTimeout)

	patient := patientJoinsAfterWrongDOB(t, v)
	t.Logf("patient waiting after %v", time.Since(start).Round(time.Millisecond))
	checkWaitingRoomHoldsMedia(t, v, patient)

	// Admitted: the patient's page goes into the call by itself.
	admit(t, provider)
	patient.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)
	call := callPair{provider: provider, patient: patient}
	ids := call.selves(t)
	call.wait(t, provider, "media from the patient", mediaFrom(ids[patient]))
	call.wait(t, patient, "media from the provider", mediaFrom(ids[provider]))
	t.Logf("media both ways after %v", time.Since(start).Round(time.Millisecond))
	call.wait(t, patient, "quality shown", `!document.getElementById('self-quality').hidden
    && /good|fair|poor/.test(document.querySelector('[data-participant] .quality').textContent)`)
	screenshot(t, patient, "call-patient-360.png")
	provider.WaitFor(t, ctx, `document.querySelector('#room-list [data-state="admitted"] [data-action="remove"]') !== null`, pageTimeout)

	endVisitForEveryone(t, provider, patient)
	checkUsedLinkRefused(t, v.link)

	// Nothing secret reached the server log.
	logs := v.srv.Logs()
	if secret := v.link[strings.Index(v.link, "#invite=")+len("#invite="):]; strings.Contains(logs, secret) {
		t.Error("the server log holds the invite secret")
	}
	if strings.Contains(logs, patientDOB) || strings.Contains(logs, patientName) {
		t.Error("the server log holds the patient's date of birth or name")
	}
}

// callPair is the provider's and the patient's browsers in one call.
type callPair struct {
	provider, patient *Browser
}

// selves is each page's own participant ID.
func (c callPair) selves(t *testing.T) map[*Browser]string {
	t.Helper()
	ids := map[*Browser]string{}
	for _, b := range []*Browser{c.provider, c.patient} {
		ids[b] = Eval[string](t, b, `window.openvisit.self || ''`)
	}
	return ids
}

// wait polls pred on b until callTimeout; on failure it dumps both pages'
// inbound media and fails the test.
func (c callPair) wait(t *testing.T, b *Browser, what, pred string) {
	t.Helper()
	if err := b.Poll(t.Context(), pred, callTimeout); err != nil {
		c.provider.Dump(t, "media", inboundSummary)
		c.patient.Dump(t, "media", inboundSummary)
		t.Fatalf("%s: %s: %v", b.Name, what, err)
	}
}

// patientJoinsAfterWrongDOB opens the invite in a new patient browser
// (counting its peer connections), gives a wrong date of birth first (the
// page says so and stays usable), then reloads and joins the waiting room.
func patientJoinsAfterWrongDOB(t *testing.T, v visitSetup) *Browser {
	t.Helper()
	ctx := t.Context()
	patient := NewBrowser(t, WithName("patient"), WithFlag("hide-scrollbars", true))
	patient.SetViewport(t, 360, 740)
	countPeerConnections(t, patient)

	// A wrong date of birth first: the page says so and stays usable.
	patient.Navigate(t, v.link)
	patient.WaitFor(t, ctx, `document.body.dataset.state === 'identity'`, pageTimeout)
	fillDOB(t, patient, "1984-07-10")
	patient.WaitFor(t, ctx, `!document.getElementById('dob-error').hidden`, pageTimeout)
	if msg := Eval[string](t, patient, `document.getElementById('dob-error').textContent`); !strings.Contains(msg, "does not match") {
		t.Errorf("patient: wrong date of birth says %q", msg)
	}
	patient.Navigate(t, v.srv.URL+"/join") // a reload: the secret is kept in this tab
	patientJoins(t, patient, v.srv.URL+"/join", true)
	screenshot(t, patient, "waiting-360.png")
	return patient
}

// checkWaitingRoomHoldsMedia: the provider sees the patient arrive, live.
// Meanwhile the patient has no media at all: no peer connection, and no
// join grant.
func checkWaitingRoomHoldsMedia(t *testing.T, v visitSetup, patient *Browser) {
	t.Helper()
	provider := v.provider
	provider.WaitFor(t, t.Context(), `document.querySelector('#room-list [data-state="waiting"]') !== null
    && document.getElementById('room').textContent.includes('Jordan Rivera')`, pageTimeout)
	if n := Eval[int](t, patient, `window.__pcCount`); n != 0 {
		t.Errorf("patient: %d peer connections while waiting, want 0", n)
	}
	if n := Eval[int](t, provider, `document.querySelectorAll('figure[data-participant]').length`); n != 0 {
		t.Errorf("provider: %d remote tiles while the patient waits, want 0", n)
	}
	joinStatus := Eval[string](t, patient, fmt.Sprintf(`(async () => {
  const s = await (await fetch('/api/v1/auth/session')).json();
  const r = await fetch('/api/v1/visits/%s/join', {method: 'POST', headers: {'X-CSRF-Token': s.csrf_token, 'Content-Type': 'application/json'}, body: '{}'});
  const b = await r.json();
  return r.status + ' ' + (b.error ? b.error.code : '');
})()`, v.visitID))
	if joinStatus != "409 not_admitted" {
		t.Errorf("patient: join while waiting answers %q, want 409 not_admitted", joinStatus)
	}
}

// endVisitForEveryone: the provider ends the visit, both pages say so,
// and the patient's session is gone.
func endVisitForEveryone(t *testing.T, provider, patient *Browser) {
	t.Helper()
	ctx := t.Context()
	provider.Click(t, "#end-visit")
	provider.WaitFor(t, ctx, `document.querySelector('dialog[open] #confirm-ok') !== null`, pageTimeout)
	provider.Click(t, "#confirm-ok")
	provider.WaitFor(t, ctx, `!document.getElementById('ended').hidden`, pageTimeout)
	patient.WaitFor(t, ctx, `!document.getElementById('ended').hidden
    && document.getElementById('ended-title').textContent === 'The visit has ended'`, pageTimeout)
	screenshot(t, patient, "ended-360.png")
	if s := Eval[int](t, patient, `fetch('/api/v1/auth/session').then((r) => r.status)`); s != 401 {
		t.Errorf("patient: session answers %d after the visit ended, want 401", s)
	}
}

// checkUsedLinkRefused: the link is refused afterwards on another device,
// before any date of birth is asked: it was used (the pre-check tells
// nothing more, not even that the visit ended).
func checkUsedLinkRefused(t *testing.T, link string) {
	t.Helper()
	again := NewBrowser(t, WithName("again"), WithFlag("hide-scrollbars", true))
	again.SetViewport(t, 360, 740)
	again.Navigate(t, link)
	again.WaitFor(t, t.Context(), `document.body.dataset.state === 'refused' || document.body.dataset.state === 'identity'`, pageTimeout)
	if code := Eval[string](t, again, `window.openvisit.lastError`); code != "invite_used" {
		t.Errorf("link after the end: error %q (state %s), want invite_used", code, Eval[string](t, again, `document.body.dataset.state`))
	}
	if msg := Eval[string](t, again, `document.getElementById('done-text').textContent`); !strings.Contains(msg, "already used") {
		t.Errorf("link after the end says %q", msg)
	}
	screenshot(t, again, "link-ended-360.png")
}

// TestE2EReconnect cuts one side's media socket during a call, then the
// other's: each page rejoins with a fresh grant, media resumes both ways,
// and the patient is neither re-admitted nor back in the waiting room.
func TestE2EReconnect(t *testing.T) {
	ctx := t.Context()
	v := scheduleVisit(t, false)
	provider := v.provider
	provider.Click(t, fmt.Sprintf(`#visits li[data-visit-id=%q] [data-action="join"]`, v.visitID))
	provider.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)

	patient := NewBrowser(t, WithName("patient"))
	patient.SetViewport(t, 360, 740)
	patientJoins(t, patient, v.link, false)
	admit(t, provider)
	patient.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)

	call := callPair{provider: provider, patient: patient}
	ids := call.selves(t)
	other := map[*Browser]*Browser{provider: patient, patient: provider}
	for _, b := range []*Browser{provider, patient} {
		call.wait(t, b, "media", mediaFrom(ids[other[b]]))
	}
	call.switchCamera(t)
	call.shareScreen(t)

	pool := openPool(t, v.srv)
	for i, cut := range []*Browser{patient, provider} {
		call.cutAndRejoin(t, cut, i, ids)
		call.checkNotReadmitted(t, pool, v.visitID, cut)
	}
	// Each page has one remote tile: the rejoin replaced, not added.
	for _, b := range []*Browser{provider, patient} {
		if n := Eval[int](t, b, `document.querySelectorAll('figure[data-participant]').length`); n != 1 {
			t.Errorf("%s: %d remote tiles, want 1", b.Name, n)
		}
	}
}

// switchCamera: switching the patient's camera replaces the sent track
// without renegotiating: the same peer connection, and the provider keeps
// decoding.
func (c callPair) switchCamera(t *testing.T) {
	t.Helper()
	patient := c.patient
	patient.Click(t, "#settings")
	patient.WaitFor(t, t.Context(), `document.querySelectorAll('#cam-select option').length > 0`, pageTimeout)
	Eval[bool](t, patient, `(window.__cam = window.openvisit.client.sending('video'), window.__pc = window.openvisit.client.pc, true)`)
	setValue(t, patient, "#cam-select", Eval[string](t, patient, `document.getElementById('cam-select').value`))
	c.wait(t, patient, "camera switched", `document.getElementById('device-status').textContent === 'Camera switched.'
    && window.openvisit.client.sending('video') !== window.__cam && window.__cam.readyState === 'ended'
    && window.openvisit.client.pc === window.__pc`)
	c.wait(t, c.provider, "frames after the camera switch", framesAdvance)
}

// shareScreen: the provider shares the screen (Chromium's fake capture),
// the patient decodes it, and the provider stops.
func (c callPair) shareScreen(t *testing.T) {
	t.Helper()
	provider := c.provider
	provider.Click(t, "#share")
	c.wait(t, provider, "sharing", `document.getElementById('share').getAttribute('aria-pressed') === 'true'
    && window.openvisit.client.sending('video').getSettings().displaySurface !== undefined`)
	Eval[bool](t, c.patient, `(delete window.__frames, true)`)
	c.wait(t, c.patient, "frames of the shared screen", framesAdvance)
	provider.Click(t, "#share")
	c.wait(t, provider, "sharing stopped", `document.getElementById('share').getAttribute('aria-pressed') === 'false'
    && window.openvisit.client.sending('video').getSettings().displaySurface === undefined
    && window.openvisit.client.sending('video').readyState === 'live'`)
}

// cutAndRejoin drops cut's media socket (cut number i, from 0): the page
// reconnects once, and media flows and decodes both ways again.
func (c callPair) cutAndRejoin(t *testing.T, cut *Browser, i int, ids map[*Browser]string) {
	t.Helper()
	other := map[*Browser]*Browser{c.provider: c.patient, c.patient: c.provider}
	// Watch the page's states from here on.
	Eval[bool](t, cut, `(() => { window.__states = []; window.openvisit.client.addEventListener('state', (e) => window.__states.push(e.detail.state)); return true; })()`)
	began := time.Now()
	Eval[bool](t, cut, `(window.openvisit.client._dropSocket(), true)`)
	c.wait(t, cut, "rejoin", fmt.Sprintf(`window.openvisit.client.reconnects === %d && document.body.dataset.state === 'connected'`, 1))
	if states := Eval[[]string](t, cut, `window.__states`); len(states) == 0 || states[0] != "reconnecting" {
		t.Errorf("%s: states after the cut %v, want reconnecting first", cut.Name, states)
	}
	t.Logf("%s: rejoined %v after the cut", cut.Name, time.Since(began).Round(time.Millisecond))
	for _, b := range []*Browser{c.provider, c.patient} {
		c.wait(t, b, "media after the cut", mediaFrom(ids[other[b]]))
		Eval[bool](t, b, `(delete window.__frames, true)`)
		c.wait(t, b, "frames still decoding", framesAdvance)
		if s := Eval[string](t, b, `document.body.dataset.state`); s != "connected" {
			t.Errorf("%s: state %q after %s's cut, want connected", b.Name, s, cut.Name)
		}
	}
	t.Logf("cut %d (%s): media both ways %v after the cut", i+1, cut.Name, time.Since(began).Round(time.Millisecond))
}

// checkNotReadmitted: after cut's rejoin there is one patient, still
// admitted, and nobody waiting.
func (c callPair) checkNotReadmitted(t *testing.T, pool *pgxpool.Pool, visitID string, cut *Browser) {
	t.Helper()
	var n int
	var state string
	if err := pool.QueryRow(t.Context(), `SELECT count(*), min(state) FROM participants WHERE visit_id = $1 AND role = 'patient'`, visitID).Scan(&n, &state); err != nil {
		t.Fatal(err)
	}
	if n != 1 || state != "admitted" {
		t.Errorf("after %s's cut: %d patient participants, state %q; want 1, admitted", cut.Name, n, state)
	}
	if w := Eval[int](t, c.provider, `document.querySelectorAll('#room-list [data-state="waiting"]').length`); w != 0 {
		t.Errorf("after %s's cut: %d waiting-room entries on the provider's page, want 0", cut.Name, w)
	}
}
