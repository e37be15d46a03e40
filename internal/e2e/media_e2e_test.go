package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
)

// inboundVideo is a page's received video (the inbound-rtp video entry that
// decoded the most frames).
type inboundVideo struct {
	Width         int     `json:"width"`
	FramesDecoded int     `json:"framesDecoded"`
	NackCount     int     `json:"nackCount"`
	PacketsLost   int     `json:"packetsLost"`
	FreezeCount   int     `json:"freezeCount"`
	FreezeSeconds float64 `json:"freezeSeconds"`
	Retransmitted int     `json:"retransmitted"`
}

const inboundVideoJS = `(async () => {
  const c = window.openvisit && window.openvisit.client;
  let best = null;
  if (!c) return best;
  (await c.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
    if (best && best.framesDecoded >= (s.framesDecoded || 0)) return;
    best = {width: s.frameWidth || 0, framesDecoded: s.framesDecoded || 0, nackCount: s.nackCount || 0,
      packetsLost: s.packetsLost || 0, freezeCount: s.freezeCount || 0, freezeSeconds: s.totalFreezesDuration || 0,
      retransmitted: s.retransmittedPacketsReceived || 0};
  });
  return best;
})()`

// sentLayerWidths lists the frame widths of the simulcast layers a page is
// encoding (outbound-rtp video with a rid and frames).
const sentLayerWidthsJS = `(async () => {
  const c = window.openvisit && window.openvisit.client;
  const out = [];
  if (!c) return out;
  (await c.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid && s.frameWidth > 0 && s.framesEncoded > 0) out.push(s.frameWidth);
  });
  return out;
})()`

// waitSentLayers waits until the page encodes at least two simulcast
// layers (Chrome sends fewer than three for a small camera) and returns
// their widths, smallest first.
func waitSentLayers(t *testing.T, b *Browser) []int {
	t.Helper()
	deadline := time.Now().Add(callTimeout)
	for {
		widths := Eval[[]int](t, b, sentLayerWidthsJS)
		if len(widths) >= 2 {
			slices.Sort(widths)
			t.Logf("%s encodes layers of widths %v", b.Name, widths)
			return widths
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s encodes %d simulcast layers (%v), want at least 2", b.Name, len(widths), widths)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func videoStats(t *testing.T, b *Browser) inboundVideo {
	t.Helper()
	v := Eval[*inboundVideo](t, b, inboundVideoJS)
	if v == nil {
		return inboundVideo{}
	}
	return *v
}

// startCall opens both demo links and waits until each page decodes the
// other's media. It returns the provider's and the patient's browsers.
func startCall(t *testing.T, srv *Server) (provider, patient *Browser) {
	t.Helper()
	c := openCall(t, srv, nil, pageDump{"media", inboundSummary})
	c.connected()
	c.mediaFlows()
	return c.provider, c.patient
}

// call is a provider's and a patient's browser on the demo links.
type call struct {
	t                 *testing.T
	provider, patient *Browser
	dumps             []pageDump // what a failed wait shows of each page
}

// pageDump is a script whose result a failed wait logs, under label.
type pageDump struct{ label, js string }

// openCall opens both demo links in new browsers, the patient's after
// preparePatient (nil: none) has set its browser up.
func openCall(t *testing.T, srv *Server, preparePatient func(*Browser), dumps ...pageDump) *call {
	t.Helper()
	links := srv.DemoLinks(t)
	c := &call{t: t, provider: NewBrowser(t, WithName("provider")), patient: NewBrowser(t, WithName("patient")), dumps: dumps}
	if preparePatient != nil {
		preparePatient(c.patient)
	}
	c.provider.Navigate(t, links[0])
	c.patient.Navigate(t, links[1])
	return c
}

// wait polls b until pred holds; when it times out, it logs the dumps of
// both pages and fails the test.
func (c *call) wait(b *Browser, what, pred string) {
	c.t.Helper()
	if err := b.Poll(c.t.Context(), pred, callTimeout); err != nil {
		for _, x := range []*Browser{c.provider, c.patient} {
			for _, d := range c.dumps {
				x.Dump(c.t, d.label, d.js)
			}
		}
		c.t.Fatalf("%s: %s: %v", b.Name, what, err)
	}
}

// connected waits until both pages are connected.
func (c *call) connected() {
	c.t.Helper()
	for _, b := range []*Browser{c.provider, c.patient} {
		c.wait(b, "connect", `document.body.dataset.state === 'connected'`)
	}
}

// mediaFlows waits until each page receives the other's media.
func (c *call) mediaFlows() {
	c.t.Helper()
	ids := map[*Browser]string{}
	for _, b := range []*Browser{c.provider, c.patient} {
		ids[b] = Eval[string](c.t, b, `window.openvisit.self`)
	}
	c.wait(c.provider, "media from the patient", mediaFrom(ids[c.patient]))
	c.wait(c.patient, "media from the provider", mediaFrom(ids[c.provider]))
}

// waitVideo polls the page's received video until cond holds.
func waitVideo(t *testing.T, b *Browser, what string, cond func(inboundVideo) bool) inboundVideo {
	t.Helper()
	deadline := time.Now().Add(callTimeout)
	for {
		v := videoStats(t, b)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %s (last: %+v)", b.Name, what, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestE2ESimulcastLayerSwitch: the patient's browser publishes simulcast;
// when the provider's downlink is capped (the SFU's bandwidth-estimate
// hook), the provider's browser receives the lowest layer, and a higher one
// again once the cap is lifted — seen in the decoded frameWidth.
func TestE2ESimulcastLayerSwitch(t *testing.T) {
	srv := StartServer(t, nil)
	provider, patient := startCall(t, srv)
	media := srv.App.Media()

	widths := waitSentLayers(t, patient)
	low := widths[0]

	start := time.Now()
	first := waitVideo(t, provider, "a layer above the lowest, uncapped", func(v inboundVideo) bool { return v.Width > low })
	t.Logf("uncapped: provider decodes %d px wide after %v", first.Width, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	media.SetSubscriberBandwidthCap(60_000)
	capped := waitVideo(t, provider, "the lowest layer under the cap", func(v inboundVideo) bool { return v.Width == low })
	t.Logf("capped: provider decodes %d px wide after %v", capped.Width, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	media.SetSubscriberBandwidthCap(0)
	lifted := waitVideo(t, provider, "a higher layer after the cap", func(v inboundVideo) bool { return v.Width > low })
	t.Logf("lifted: provider decodes %d px wide after %v", lifted.Width, time.Since(start).Round(time.Millisecond))
	waitVideo(t, provider, "frames keep decoding", func(v inboundVideo) bool { return v.FramesDecoded > lifted.FramesDecoded+30 })
}

// TestMediaUnderPacketLoss: with 5% of the RTP the SFU sends to one
// subscriber (the provider) dropped, NACK/RTX repairs video: that browser
// sends NACKs, keeps decoding, and freezes stay short. The other subscriber
// in the room (the patient) is not subjected to it and keeps decoding.
func TestMediaUnderPacketLoss(t *testing.T) {
	srv := StartServer(t, nil)
	provider, patient := startCall(t, srv)
	media := srv.App.Media()
	visit := ids.VisitID(Eval[string](t, provider, `window.openvisit.client.opts.visit`))
	lossy := ids.ParticipantID(Eval[string](t, provider, `window.openvisit.self`))

	// Hold the subscribers on the lowest layer, so that what is measured is
	// loss repair, not layer switches or decoding 720p on a busy machine.
	media.SetSubscriberBandwidthCap(60_000)
	defer media.SetSubscriberBandwidthCap(0)
	if !media.SetSubscriberLoss(visit, lossy, 50) { // 5%
		t.Fatalf("SetSubscriberLoss: the provider (%s) is not in visit %s", lossy, visit)
	}
	defer media.SetSubscriberLoss(visit, lossy, 0)
	start, cleanStart := videoStats(t, provider), videoStats(t, patient)
	began := time.Now()
	// 150 frames is 5 to 8 s of the fake camera: long enough for several
	// repairs (and NACKs) at 5% loss.
	end := waitVideo(t, provider, "decoding with NACKs under loss", func(v inboundVideo) bool {
		return v.NackCount > start.NackCount && v.FramesDecoded >= start.FramesDecoded+150
	})
	window := time.Since(began)
	clean := waitVideo(t, patient, "the patient keeps decoding", func(v inboundVideo) bool {
		return v.FramesDecoded >= cleanStart.FramesDecoded+100
	})
	froze := end.FreezeSeconds - start.FreezeSeconds
	t.Logf("provider, under 5%% loss for %v: %d frames decoded, %d NACKs, %d lost, %d retransmitted, %d freezes (%.2f s)",
		window.Round(time.Millisecond), end.FramesDecoded-start.FramesDecoded, end.NackCount-start.NackCount,
		end.PacketsLost-start.PacketsLost, end.Retransmitted-start.Retransmitted, end.FreezeCount-start.FreezeCount, froze)
	t.Logf("patient, no loss: %d frames decoded, %d NACKs, %d lost",
		clean.FramesDecoded-cleanStart.FramesDecoded, clean.NackCount-cleanStart.NackCount, clean.PacketsLost-cleanStart.PacketsLost)
	if end.Retransmitted <= start.Retransmitted {
		t.Errorf("no retransmission reached the provider (NACKs sent: %d): loss was not repaired", end.NackCount-start.NackCount)
	}
	// Repair that fails for good freezes video to the end, which this
	// catches. The bound stays generous: freezes of about 3 s (Chrome's
	// wait for a decodable frame) still show now and then under go test
	// -p 2 load, with every NACK answered; their cause is not found yet.
	// Unanswered NACKs after a layer switch were one cause, fixed (see
	// TestRepairNeverSwitchesLayers).
	if froze > window.Seconds()/2 {
		t.Errorf("video froze %.2f s of %v under 5%% loss, want under half", froze, window.Round(time.Millisecond))
	}
	// The patient's NACKs are logged, not asserted: on this loopback with
	// a busy 2-core machine (go test -p 2), the clean path too loses
	// packets, tens of NACKs in a window (seen: 28). That the injected loss
	// reaches one subscriber only is TestSubscriberLoss's job (sfu), where
	// it is exact.
}

// sentLayer is one simulcast layer a page sends (outbound-rtp video with a
// rid). Active is Chrome's view of the encoding (nil where not reported).
type sentLayer struct {
	BytesSent int64 `json:"bytesSent"`
	Active    *bool `json:"active"`
	Width     int   `json:"width"`
}

func (l sentLayer) String() string {
	active := "?"
	if l.Active != nil {
		active = fmt.Sprint(*l.Active)
	}
	return fmt.Sprintf("{%d B, %d px, active %s}", l.BytesSent, l.Width, active)
}

const sentLayersJS = `(async () => {
  const c = window.openvisit && window.openvisit.client;
  const out = {};
  if (!c) return out;
  (await c.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid) {
      out[s.rid] = {bytesSent: s.bytesSent || 0, active: s.active, width: s.frameWidth || 0};
    }
  });
  return out;
})()`

// layerWatch is the page's simulcast layers by rid, with how long each
// one's bytesSent has not grown (measured since the watch began).
type layerWatch struct {
	layers map[string]sentLayer
	idle   map[string]time.Duration
}

// waitLayers polls the page's sent layers every 200 ms until cond holds,
// or fails the test after callTimeout.
func waitLayers(t *testing.T, b *Browser, what string, cond func(layerWatch) bool) layerWatch {
	t.Helper()
	deadline := time.Now().Add(callTimeout)
	var last map[string]sentLayer
	changed := map[string]time.Time{}
	for {
		now := time.Now()
		w := layerWatch{layers: Eval[map[string]sentLayer](t, b, sentLayersJS), idle: map[string]time.Duration{}}
		for rid, l := range w.layers {
			if prev, ok := last[rid]; !ok || prev.BytesSent != l.BytesSent {
				changed[rid] = now
			}
			w.idle[rid] = now.Sub(changed[rid])
		}
		if last != nil && cond(w) {
			return w
		}
		last = w.layers
		if now.After(deadline) {
			t.Fatalf("%s: timed out waiting for %s (layers %v, idle %v)", b.Name, what, w.layers, w.idle)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sending reports whether some layer's bytesSent grew since the last poll.
func (w layerWatch) sending() bool {
	for _, d := range w.idle {
		if d == 0 {
			return true
		}
	}
	return false
}

// pausedFor reports whether every layer has sent nothing for d, and none
// is reported active.
func (w layerWatch) pausedFor(d time.Duration) bool {
	if len(w.layers) == 0 {
		return false
	}
	for rid, l := range w.layers {
		if w.idle[rid] < d || (l.Active != nil && *l.Active) {
			return false
		}
	}
	return true
}

// patientVideoJS runs body on the provider's page with v, the <video> of
// the patient's tile, and tr, its video track; it returns body's value, or
// false without them.
func patientVideoJS(patient, body string) string {
	return fmt.Sprintf(`(() => {
  const v = document.querySelector('[data-participant=%q] video');
  const tr = v && v.srcObject && v.srcObject.getVideoTracks()[0];
  if (!tr) return false;
  const c = window.openvisit.client;
  %s
})()`, patient, body)
}

// TestE2EUnwatchedLayersPaused: when the provider's page goes to the
// background, its call page hints 0×0 for the patient's video and the SFU
// pauses every simulcast
// layer at the patient's browser, which stops sending them (bytesSent of
// each rid stops growing; Chrome reports the encodings inactive); once the
// video is shown again the layers resume and the provider decodes the
// patient's video again, above the lowest layer. A camera switch while
// paused (replaceTrack) does not resume them.
func TestE2EUnwatchedLayersPaused(t *testing.T) {
	srv := StartServer(t, nil)
	provider, patient := startCall(t, srv)
	low := waitSentLayers(t, patient)[0]
	patientID := Eval[string](t, patient, `window.openvisit.self`)
	waitLayers(t, patient, "the patient sending video", layerWatch.sending)

	// The provider's page goes to the background (another tab in front):
	// the call page hints 0×0 for every remote video while hidden.
	if !Eval[bool](t, provider, patientVideoJS(patientID, `
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
  document.dispatchEvent(new Event('visibilitychange'));
  return true;`)) {
		t.Fatal("the provider's page has no video of the patient")
	}
	start := time.Now()
	// The SFU's grace is 2 s; a paused layer then sends nothing at all.
	paused := waitLayers(t, patient, "every layer paused", func(w layerWatch) bool { return w.pausedFor(2 * time.Second) })
	t.Logf("hidden: the patient's layers are paused after %v: %v", time.Since(start).Round(time.Millisecond), paused.layers)

	// A device switch (replaceTrack) keeps the encodings, so the layers
	// stay paused.
	if !Eval[bool](t, patient, `(async () => {
  const s = await navigator.mediaDevices.getUserMedia({video: true});
  return window.openvisit.client.replaceTrack(s.getVideoTracks()[0]);
})()`) {
		t.Fatal("the patient's page could not switch its camera")
	}
	waitLayers(t, patient, "the layers still paused after a camera switch", func(w layerWatch) bool { return w.pausedFor(2 * time.Second) })
	hidden := videoStats(t, provider)

	// In front again: the page hints the tile's size.
	if !Eval[bool](t, provider, patientVideoJS(patientID, `
  delete document.visibilityState;
  delete document.hidden;
  document.dispatchEvent(new Event('visibilitychange'));
  return document.visibilityState === 'visible' && v.clientWidth > 0;`)) {
		t.Fatal("the provider's page could not show the patient's video again")
	}
	start = time.Now()
	waitLayers(t, patient, "a layer resumed", layerWatch.sending)
	t.Logf("shown: the patient sends again after %v", time.Since(start).Round(time.Millisecond))
	v := waitVideo(t, provider, "the patient's video decoding again, above the lowest layer", func(v inboundVideo) bool {
		return v.FramesDecoded > hidden.FramesDecoded+30 && v.Width > low
	})
	t.Logf("shown: the provider decodes %d px wide after %v", v.Width, time.Since(start).Round(time.Millisecond))
}
