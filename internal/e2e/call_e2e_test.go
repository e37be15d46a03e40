package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// callTimeout bounds each wait. A two-browser call on loopback decodes in
// about a second; the waits poll, so the generous bound costs nothing when
// things work, and a failed connection stops the test at once.
const callTimeout = 30 * time.Second

// mediaFrom is a page predicate: this page decodes video and plays audio
// from participant id. Video: an inbound-rtp video stream has decoded frames
// of a real size and the tile's <video> has dimensions. Audio: bytesReceived
// rises even for silence, so the proof is totalAudioEnergy > 0, which needs
// the track played through an unmuted, playing media element.
func mediaFrom(id string) string {
	return fmt.Sprintf(`(async () => {
  const c = window.openvisit && window.openvisit.client;
  const tile = document.querySelector('[data-participant=%q]');
  if (!c || !tile) return false;
  const v = tile.querySelector('video'), a = tile.querySelector('audio');
  if (!v || !a || a.muted || a.paused || !a.srcObject || a.srcObject.id !== %q) return false;
  if (a.srcObject.getAudioTracks().length === 0 || v.videoWidth === 0) return false;
  let video = false, audio = false;
  (await c.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video' && s.framesDecoded > 0 && s.frameWidth > 0) video = true;
    if (s.kind === 'audio' && s.totalAudioEnergy > 0) audio = true;
  });
  return video && audio;
})()`, id, id)
}

// inboundSummary describes a page's inbound media for failure logs.
const inboundSummary = `(async () => {
  const c = window.openvisit && window.openvisit.client;
  const out = {state: document.body.dataset.state, pc: c && c.pc ? c.pc.connectionState : null,
    tiles: [...document.querySelectorAll('[data-participant]')].map((t) => t.dataset.participant), inbound: []};
  if (!c) return out;
  (await c.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') out.inbound.push({kind: s.kind, bytes: s.bytesReceived,
      framesDecoded: s.framesDecoded, frameWidth: s.frameWidth, energy: s.totalAudioEnergy});
  });
  return out;
})()`

func TestE2ETwoBrowsersCall(t *testing.T) {
	srv := StartServer(t, nil)
	links := srv.DemoLinks(t)

	provider := NewBrowser(t, WithName("provider"))
	patient := NewBrowser(t, WithName("patient"))
	// The patient is on a small phone: the layout must hold at 360 px.
	patient.SetViewport(t, 360, 740)
	call := callPair{provider: provider, patient: patient}

	start := time.Now()
	provider.Navigate(t, links[0])
	patient.Navigate(t, links[1])
	ids := call.connectDemo(t, start)

	// Each decodes the other's video and plays the other's audio.
	call.wait(t, provider, "media from the patient", mediaFrom(ids[patient]))
	call.wait(t, patient, "media from the provider", mediaFrom(ids[provider]))
	t.Logf("media both ways after %v", time.Since(start).Round(time.Millisecond))
	for _, b := range []*Browser{provider, patient} {
		if n := Eval[int](t, b, `document.querySelectorAll('[data-participant]').length`); n != 1 {
			t.Errorf("%s: %d remote tiles, want 1", b.Name, n)
		}
	}

	if dir := os.Getenv("OV_E2E_SCREENSHOTS"); dir != "" {
		p := filepath.Join(dir, "call-360.png")
		if err := os.WriteFile(p, patient.Screenshot(t), 0o644); err != nil {
			t.Errorf("screenshot: %v", err)
		} else {
			t.Logf("screenshot of the patient's page at 360 px: %s", p)
		}
	}

	call.toggleMuteAndCamera(t)
	// Secrets never reach the server log: neither the one-time codes nor the
	// join token.
	token := Eval[string](t, provider, `window.openvisit.client.opts.token`)
	call.patientLeaves(t, ids)

	logs := srv.Logs()
	for i, l := range links {
		code := l[strings.Index(l, "#code=")+len("#code="):]
		if strings.Contains(logs, code) {
			t.Errorf("the server log holds demo code %d", i)
		}
	}
	if token == "" || strings.Contains(logs, token) {
		t.Errorf("the server log holds the join token (or the page has none)")
	}
}

// connectDemo waits until both pages, opened from demo links, are
// connected with the one-time code gone from the address bar, and returns
// their two distinct participant IDs.
func (c callPair) connectDemo(t *testing.T, start time.Time) map[*Browser]string {
	t.Helper()
	for _, b := range []*Browser{c.provider, c.patient} {
		c.wait(t, b, "connect", `document.body.dataset.state === 'connected'`)
		if h := Eval[string](t, b, `location.hash`); h != "" {
			t.Errorf("%s: the one-time code stays in the address bar (%d chars of fragment)", b.Name, len(h))
		}
	}
	t.Logf("both connected after %v", time.Since(start).Round(time.Millisecond))

	ids := map[*Browser]string{}
	for _, b := range []*Browser{c.provider, c.patient} {
		ids[b] = Eval[string](t, b, `window.openvisit.self`)
	}
	if ids[c.provider] == ids[c.patient] || ids[c.provider] == "" {
		t.Fatalf("participant ids %q and %q: want two distinct ids", ids[c.provider], ids[c.patient])
	}
	return ids
}

// toggleMuteAndCamera: the patient's controls toggle the local tracks
// without renegotiating.
func (c callPair) toggleMuteAndCamera(t *testing.T) {
	t.Helper()
	patient := c.patient
	patient.Click(t, "#mute")
	patient.Click(t, "#camera")
	c.wait(t, patient, "mute and camera off", `document.querySelector('#mute').getAttribute('aria-pressed') === 'true'
    && document.querySelector('#camera').getAttribute('aria-pressed') === 'true'
    && window.openvisit.localStream.getAudioTracks().every((t) => !t.enabled)
    && window.openvisit.localStream.getVideoTracks().every((t) => !t.enabled)`)
	patient.Click(t, "#mute")
	c.wait(t, patient, "unmute", `document.querySelector('#mute').getAttribute('aria-pressed') === 'false'
    && window.openvisit.localStream.getAudioTracks().every((t) => t.enabled)`)
}

// patientLeaves: the patient leaves; the provider sees the tile go and
// stays connected.
func (c callPair) patientLeaves(t *testing.T, ids map[*Browser]string) {
	t.Helper()
	c.patient.Click(t, "#leave")
	c.wait(t, c.patient, "left", `document.body.dataset.state === 'closed' && !document.querySelector('#ended').hidden`)
	c.wait(t, c.provider, "patient left", fmt.Sprintf(`document.querySelector('[data-participant=%q]') === null
    && !document.querySelector('#waiting').hidden`, ids[c.patient]))
	if s := Eval[string](t, c.provider, `document.body.dataset.state`); s != "connected" {
		t.Errorf("provider: state %q after the patient left, want connected", s)
	}
}

// A demo link works once: opening it again shows why it cannot be used, and
// the page reports the failed state at once rather than hanging.
func TestE2EUsedLinkRefused(t *testing.T) {
	srv := StartServer(t, nil)
	links := srv.DemoLinks(t)
	ctx := t.Context()

	first := NewBrowser(t, WithName("first"))
	first.Navigate(t, links[1])
	first.WaitFor(t, ctx, `document.body.dataset.state === 'connected'`, callTimeout)

	again := NewBrowser(t, WithName("again"))
	again.Navigate(t, links[1])
	err := again.Poll(ctx, `false`, callTimeout)
	if err == nil || !strings.Contains(err.Error(), `state "failed"`) {
		t.Fatalf("reusing a link: %v, want the page to fail", err)
	}
	msg := Eval[string](t, again, `document.querySelector('[role=alert]').textContent`)
	if msg == "" {
		t.Error("no message tells the user why the link failed")
	}
	// The first participant is unaffected.
	if s := Eval[string](t, first, `document.body.dataset.state`); s != "connected" {
		t.Errorf("first: state %q, want connected", s)
	}
}
