package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/signaling"
)

// recIndicatorOn is a page predicate: the recording indicator says
// "Recording" and is displayed.
const recIndicatorOn = `(() => { const e = document.getElementById('rec-indicator');
  return e.textContent === 'Recording' && getComputedStyle(e).display !== 'none' && e.getAttribute('role') === 'status'; })()`

// recIndicatorOff: the indicator is empty and not displayed.
const recIndicatorOff = `(() => { const e = document.getElementById('rec-indicator');
  return e.textContent === '' && getComputedStyle(e).display === 'none'; })()`

// signInBrowser gives a browser the session of an apiClient (made in the
// database), as if it had signed in.
func signInBrowser(t *testing.T, b *Browser, srv *Server, c *apiClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), DefaultTimeout)
	defer cancel()
	yes := true
	err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: signaling.SessionCookie, Value: c.Cookie,
			URL: srv.URL + "/", Path: "/", Secure: &yes, HTTPOnly: &yes, SameSite: network.CookieSameSiteLax})
		return chromedp.Void{}, err
	})
	if err != nil {
		t.Fatalf("%s: set the session cookie: %v", b.Name, err)
	}
}

// TestE2ERecordingConsentUI: a scheduled visit on a server with the
// recorder role. In the call the provider asks to record, the patient
// allows in the consent dialog, the provider starts; both pages show the
// indicator; the patient withdraws after ~4 s, which stops the recording
// and clears both indicators. The provider then finds the recordings on
// /recordings and plays them: every participant's video element loads and
// plays in step; an admin places a legal hold.
func TestE2ERecordingConsentUI(t *testing.T) {
	ctx := t.Context()
	s3 := testenv.MinIO(t)
	srv := recordingServer(t, s3, nil)
	v := scheduleVisitOn(t, srv, false)
	provider, patient := v.provider, joinRecordedCall(t, v)

	askAndConsent(t, provider, patient)
	started := startRecordingUI(t, provider, patient)

	pool := recPool(t, srv)
	visit := ids.VisitID(v.visitID)
	waitFor(t, "the recorder to record the participants", 20*time.Second, func() bool {
		recs, _ := store.ListRecordings(ctx, pool, store.RecordingFilter{VisitID: visit, Now: time.Now()})
		return len(recs) == 2
	})
	time.Sleep(4*time.Second - time.Since(started))

	withdrawConsentUI(t, provider, patient)
	recs := waitRecordings(t, pool, visit, 2, 60*time.Second)
	for _, r := range recs {
		t.Logf("recording %s (%s): %s, %d bytes", r.ID, r.ParticipantRole, r.Status, r.Size)
	}

	section := findRecordingsUI(t, provider, srv, v.visitID)
	playRecordingsUI(t, provider, section)
	adminPlacesHold(t, srv, pool, v.visitID)
}

// joinRecordedCall has the provider join the visit's call and admit a
// patient, and waits until each receives the other's media; it returns
// the patient's browser.
func joinRecordedCall(t *testing.T, v visitSetup) *Browser {
	t.Helper()
	ctx := t.Context()
	provider := v.provider
	provider.Click(t, fmt.Sprintf(`#visits li[data-visit-id=%q] [data-action="join"]`, v.visitID))
	provider.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)
	provider.SetViewport(t, 360, 740)

	patient := NewBrowser(t, WithName("patient"), WithFlag("hide-scrollbars", true))
	patient.SetViewport(t, 360, 740)
	patientJoins(t, patient, v.link, false)
	admit(t, provider)
	patient.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)
	self := map[*Browser]string{}
	for _, b := range []*Browser{provider, patient} {
		self[b] = Eval[string](t, b, `window.openvisit.self || ''`)
	}
	for b, other := range map[*Browser]*Browser{provider: patient, patient: provider} {
		if err := b.Poll(ctx, mediaFrom(self[other]), callTimeout); err != nil {
			b.Dump(t, "media", inboundSummary)
			t.Fatalf("%s: media from the other side: %v", b.Name, err)
		}
	}
	return patient
}

// askAndConsent: nothing is recorded yet and the patient's page shows no
// panel at all; the provider asks, the patient's consent dialog opens,
// Escape closes it without answering, and the patient then allows.
func askAndConsent(t *testing.T, provider, patient *Browser) {
	t.Helper()
	ctx := t.Context()
	provider.WaitFor(t, ctx, `!document.getElementById('rec').hidden && !document.getElementById('rec-ask').hidden
    && document.getElementById('rec-start').hidden`, pageTimeout)
	if !Eval[bool](t, patient, `document.getElementById('rec').hidden && `+recIndicatorOff) {
		t.Error("patient: recording UI shown before any request")
	}

	// Ask → the patient's consent dialog.
	provider.Click(t, "#rec-ask")
	provider.WaitFor(t, ctx, `document.getElementById('rec-ask').hidden
    && document.getElementById('rec-text').textContent.includes('Waiting for the patient')`, pageTimeout)
	patient.WaitFor(t, ctx, `document.getElementById('rec-consent').open
    && document.activeElement === document.getElementById('rec-deny')`, pageTimeout)
	if s := Eval[string](t, patient, `(() => { const d = document.getElementById('rec-consent');
  return [d.getAttribute('aria-labelledby'), d.getAttribute('aria-describedby'), document.getElementById('rec-consent-text').textContent].join('|'); })()`); !strings.Contains(s, "would like to record this visit") || !strings.HasPrefix(s, "rec-consent-title|rec-consent-text|") {
		t.Errorf("patient: consent dialog %q", s)
	}
	screenshot(t, patient, "rec-consent-360.png")
	// Escape closes the dialog without answering; the request stays open.
	if err := chromedp.Do(patient.Context(), chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	patient.WaitFor(t, ctx, `!document.getElementById('rec-consent').open && !document.getElementById('rec-answer').hidden`, pageTimeout)
	time.Sleep(2500 * time.Millisecond) // a poll later, the dialog has not come back by itself
	if Eval[bool](t, patient, `document.getElementById('rec-consent').open`) {
		t.Error("patient: the consent dialog reopened by itself after Escape")
	}
	patient.Click(t, "#rec-answer")
	patient.WaitFor(t, ctx, `document.getElementById('rec-consent').open`, pageTimeout)
	patient.Click(t, "#rec-allow")
	patient.WaitFor(t, ctx, `!document.getElementById('rec-consent').open && window.openvisit.recording && window.openvisit.recording.consent === 'given'`, pageTimeout)
}

// startRecordingUI has the provider start recording and checks that both
// pages show the indicator; it returns when the provider clicked Start.
func startRecordingUI(t *testing.T, provider, patient *Browser) time.Time {
	t.Helper()
	ctx := t.Context()
	provider.WaitFor(t, ctx, `!document.getElementById('rec-start').hidden`, pageTimeout)
	provider.Click(t, "#rec-start")
	started := time.Now()
	for _, b := range []*Browser{provider, patient} {
		b.WaitFor(t, ctx, recIndicatorOn, pageTimeout)
	}
	patient.WaitFor(t, ctx, `!document.getElementById('rec-withdraw').hidden
    && document.getElementById('rec-withdraw').textContent === 'Stop recording and withdraw consent'`, pageTimeout)
	if !Eval[bool](t, provider, `!document.getElementById('rec-stop').hidden && document.getElementById('rec-start').hidden`) {
		t.Error("provider: no Stop button while recording")
	}
	screenshot(t, provider, "rec-provider-recording-360.png")
	screenshot(t, patient, "rec-patient-recording-360.png")
	return started
}

// withdrawConsentUI: the patient withdraws, the recording stops, and both
// indicators clear.
func withdrawConsentUI(t *testing.T, provider, patient *Browser) {
	t.Helper()
	ctx := t.Context()
	patient.Click(t, "#rec-withdraw")
	for _, b := range []*Browser{provider, patient} {
		b.WaitFor(t, ctx, recIndicatorOff+` && window.openvisit.recording && !window.openvisit.recording.recording
      && window.openvisit.recording.consent === 'withdrawn'`, pageTimeout)
	}
	provider.WaitFor(t, ctx, `document.getElementById('rec-text').textContent.includes('withdrew consent')
    && !document.getElementById('rec-ask').hidden && document.getElementById('rec-stop').hidden`, pageTimeout)
	if txt := Eval[string](t, patient, `document.getElementById('rec-text').textContent`); !strings.Contains(txt, "withdrew") {
		t.Errorf("patient: after withdrawing the panel says %q", txt)
	}
	screenshot(t, provider, "rec-provider-withdrawn-360.png")
}

// findRecordingsUI: the provider finds the visit's recordings on
// /recordings (from the nav), with no legal hold buttons, and a download
// link among one recording's parts. It returns the selector of the visit's
// section.
func findRecordingsUI(t *testing.T, provider *Browser, srv *Server, visitID string) string {
	t.Helper()
	ctx := t.Context()
	provider.Navigate(t, srv.URL+"/provider")
	provider.WaitFor(t, ctx, `document.body.dataset.loaded === 'true'`, pageTimeout)
	provider.Click(t, `nav.pages a[href="/recordings"]`)
	provider.WaitFor(t, ctx, `location.pathname === '/recordings' && document.body.dataset.loaded === 'true'`, pageTimeout)
	provider.Fill(t, "#f-visit", visitID)
	provider.Click(t, "#f-submit")
	section := fmt.Sprintf(`section[data-visit-id=%q]`, visitID)
	provider.WaitFor(t, ctx, fmt.Sprintf(`!document.getElementById('f-submit').disabled && location.search.includes(%q)
    && document.querySelectorAll('%s li.recording').length === 2
    && document.querySelectorAll('#results section').length === 1`, visitID, section), pageTimeout)
	if n := Eval[int](t, provider, `document.querySelectorAll('[data-action="hold"]').length`); n != 0 {
		t.Errorf("provider: %d legal hold buttons, want none (admins only)", n)
	}
	// Parts and downloads of one recording.
	provider.Click(t, section+` li.recording [data-action="parts"]`)
	provider.WaitFor(t, ctx, `document.querySelector('`+section+` li.recording .parts:not([hidden]) a[download]') !== null`, pageTimeout)
	href := Eval[string](t, provider, `document.querySelector('`+section+` li.recording .parts a[download]').getAttribute('href')`)
	if !strings.HasPrefix(href, "/api/v1/recordings/") || !strings.HasSuffix(href, "?download=1") {
		t.Errorf("provider: download link %q", href)
	}
	screenshot(t, provider, "recordings-360.png")
	return section
}

// playerLane is one participant's video in the player.
type playerLane struct {
	Rec     string  `json:"rec"`
	Width   int     `json:"w"`
	Time    float64 `json:"t"`
	Want    float64 `json:"want"`
	Ready   int     `json:"ready"`
	Decoded int     `json:"decoded"`
}

// playRecordingsUI plays the section's recordings: both participants on
// one timeline, each lane in step with it; Home on the seek bar goes back
// to the start.
func playRecordingsUI(t *testing.T, provider *Browser, section string) {
	t.Helper()
	ctx := t.Context()
	provider.Click(t, section+` [data-action="play"]`)
	provider.WaitFor(t, ctx, `!document.getElementById('player').hidden && document.querySelectorAll('#player-videos video').length === 2
    && !document.getElementById('player-play').disabled && document.activeElement === document.getElementById('player-title')`, pageTimeout)
	provider.WaitFor(t, ctx, `[...document.querySelectorAll('#player-videos video')].every((v) => v.readyState >= 2)`, callTimeout)
	provider.Click(t, "#player-play")
	provider.WaitFor(t, ctx, `(() => { const vs = [...document.querySelectorAll('#player-videos video')];
  window.__t0 = window.__t0 || vs.map((v) => v.currentTime);
  return vs.every((v, i) => v.readyState >= 2 && !v.paused && !v.muted && v.volume > 0 && v.currentTime > window.__t0[i] + 1); })()`, callTimeout)
	lanes := Eval[[]playerLane](t, provider, `(() => { const p = window.openvisitPlayer, now = p.now();
  return p.lanes.map((l) => ({ rec: l.track.id, w: l.video.videoWidth, t: l.video.currentTime, ready: l.video.readyState,
    decoded: l.video.getVideoPlaybackQuality ? l.video.getVideoPlaybackQuality().totalVideoFrames : 0,
    want: l.current ? p.mediaTime(l, l.current, now) : -1 })); })()`)
	for _, l := range lanes {
		t.Logf("player lane %s: videoWidth %d, readyState %d, currentTime %.2f (timeline wants %.2f), %d video frames", l.Rec, l.Width, l.Ready, l.Time, l.Want, l.Decoded)
		if l.Want >= 0 && (l.Time-l.Want > 0.5 || l.Want-l.Time > 0.5) {
			t.Errorf("player lane %s is %.2f s off the timeline", l.Rec, l.Time-l.Want)
		}
	}
	// Seeking with the keyboard: Home goes back to the start.
	provider.Click(t, "#player-play") // pause
	Eval[bool](t, provider, `(document.getElementById('player-seek').focus(), true)`)
	if err := chromedp.Do(provider.Context(), chromedp.KeyEvent(kb.Home)); err != nil {
		t.Fatal(err)
	}
	provider.WaitFor(t, ctx, `document.getElementById('player-seek').value === '0'
    && window.openvisitPlayer.now() < 1000`, pageTimeout)
	screenshot(t, provider, "player-360.png")
}

// adminPlacesHold: an admin places a legal hold from the recordings page,
// and it is stored.
func adminPlacesHold(t *testing.T, srv *Server, pool *pgxpool.Pool, visitID string) {
	t.Helper()
	ctx := t.Context()
	admin, _ := staffClient(t, srv, pool, "admin")
	ab := NewBrowser(t, WithName("admin"), WithFlag("hide-scrollbars", true))
	ab.SetViewport(t, 360, 740)
	signInBrowser(t, ab, srv, admin)
	ab.Navigate(t, srv.URL+"/recordings?visit="+visitID)
	ab.WaitFor(t, ctx, `document.body.dataset.loaded === 'true' && document.querySelectorAll('li.recording').length === 2
    && !document.getElementById('nav-admin').hidden`, pageTimeout)
	ab.Click(t, `li.recording [data-action="hold"]`)
	ab.WaitFor(t, ctx, `document.querySelector('li.recording[data-hold="true"] [data-action="hold"][aria-pressed="true"]') !== null`, pageTimeout)
	held, err := store.RecordingByID(ctx, pool, Eval[string](t, ab, `document.querySelector('li.recording[data-hold="true"]').dataset.recordingId`))
	if err != nil || !held.LegalHold {
		t.Errorf("legal hold not stored: %v %v", err, held.LegalHold)
	}
	screenshot(t, ab, "recordings-admin-360.png")
}
