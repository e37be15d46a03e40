package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/openvisit/openvisit/internal/config"
)

// selectedLocalCandidateJS is the candidate type ('host', 'srflx', 'relay')
// of the local side of the page's selected ICE candidate pair, or empty before
// one is selected.
var selectedLocalCandidateJS = selectedLocalCandidate("candidateType")

// selectedRelayProtocolJS is how the page reaches its relay for the selected
// pair's local candidate ('udp', 'tcp', 'tls'; empty when not relayed).
var selectedRelayProtocolJS = selectedLocalCandidate("relayProtocol")

// selectedLocalCandidate is a script answering field of the local side of
// the page's selected ICE candidate pair (empty before one is selected).
func selectedLocalCandidate(field string) string {
	return `(async () => {
  const c = window.openvisit && window.openvisit.client;
  if (!c) return '';
  const stats = new Map();
  (await c.getStats()).forEach((s) => stats.set(s.id, s));
  for (const s of stats.values()) {
    if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
    const pair = stats.get(s.selectedCandidatePairId);
    const local = pair && stats.get(pair.localCandidateId);
    if (local) return local.` + field + ` || '';
  }
  return '';
})()`
}

// relayOnly sets the call page's diagnostics switch (sessionStorage
// 'openvisit.iceTransportPolicy' = 'relay') in every document b opens from
// now on, before the page's scripts run.
func relayOnly(t *testing.T, b *Browser) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), DefaultTimeout)
	defer cancel()
	const js = `try { sessionStorage.setItem('openvisit.iceTransportPolicy', 'relay'); } catch (e) {}`
	err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return chromedp.Void{}, err
	})
	if err != nil {
		t.Fatalf("e2e: %s: relay-only switch: %v", b.Name, err)
	}
}

// TestTURNRelay: a browser that can only reach the media node through TURN
// (iceTransportPolicy 'relay', so it offers and accepts relayed candidates
// only) completes a call through the embedded relay, with the credentials
// its join grant carries; the other browser connects directly. Both decode
// each other's video and play each other's audio.
func TestTURNRelay(t *testing.T) {
	srv := StartServer(t, func(c *config.Config) {
		c.Media.TURN.Addr = "127.0.0.1:0"
		c.Media.TURN.AllowPrivatePeers = true // the SFU is on loopback
	})
	c := openCall(t, srv, func(b *Browser) { relayOnly(t, b) },
		pageDump{"media", inboundSummary}, pageDump{"selected local candidate", selectedLocalCandidateJS})
	provider, patient := c.provider, c.patient
	c.connected()
	if p := Eval[string](t, patient, `window.openvisit.client.pc.getConfiguration().iceTransportPolicy`); p != "relay" {
		t.Fatalf("patient: iceTransportPolicy %q, want relay (the switch did not apply)", p)
	}
	if n := Eval[int](t, patient, `window.openvisit.client.pc.getConfiguration().iceServers.length`); n != 1 {
		t.Fatalf("patient: %d ICE servers, want the embedded relay", n)
	}
	c.mediaFlows()

	patientType := Eval[string](t, patient, selectedLocalCandidateJS)
	providerType := Eval[string](t, provider, selectedLocalCandidateJS)
	t.Logf("selected local candidates: patient %s, provider %s", patientType, providerType)
	if patientType != "relay" {
		t.Errorf("patient: selected local candidate type %q, want relay", patientType)
	}
	if providerType == "relay" || providerType == "" {
		t.Errorf("provider: selected local candidate type %q, want a direct one", providerType)
	}
}

// TestE2ECallOverTURNTLS: a browser on a network that passes only TLS over
// TCP (relay-only, and the relay's only URL is turns:) completes a call
// through the embedded relay's TURN-over-TLS listener, which serves the
// HTTPS listener's certificate. Both sides decode each other.
func TestE2ECallOverTURNTLS(t *testing.T) {
	srv := StartServer(t, func(c *config.Config) {
		c.Media.TURN.TLSAddr = "127.0.0.1:0"
		c.Media.TURN.AllowPrivatePeers = true // the SFU is on loopback
	})
	c := openCall(t, srv, func(b *Browser) { relayOnly(t, b) },
		pageDump{"media", inboundSummary}, pageDump{"selected local candidate", selectedLocalCandidateJS},
		pageDump{"relay protocol", selectedRelayProtocolJS})
	patient := c.patient
	c.connected()
	urls := Eval[[]string](t, patient, `window.openvisit.client.pc.getConfiguration().iceServers.flatMap((s) => [s.urls].flat())`)
	if len(urls) != 1 || !strings.HasPrefix(urls[0], "turns:127.0.0.1:") || !strings.HasSuffix(urls[0], "?transport=tcp") {
		t.Fatalf("patient's ICE servers %q, want only the relay's turns: URL", urls)
	}
	c.mediaFlows()
	if typ := Eval[string](t, patient, selectedLocalCandidateJS); typ != "relay" {
		t.Errorf("patient: selected local candidate type %q, want relay", typ)
	}
	if proto := Eval[string](t, patient, selectedRelayProtocolJS); proto != "tls" {
		t.Errorf("patient: the relay is reached over %q, want tls", proto)
	}
}
