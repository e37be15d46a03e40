package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/config"
)

// iceFailTimeout bounds how long the page may take to give up: Chromium
// declares ICE failed some seconds after its last check fails.
const iceFailTimeout = 90 * time.Second

// TestE2EICEFailureExplained: a patient whose only route to the media node
// is the clinic's relay, and the relay will not forward to the node (the
// grant's only route is unreachable), is told that the video could not
// connect, what was tried (the relay) and what to do (another network, the
// clinic's help line from config) — not "reconnecting" forever.
func TestE2EICEFailureExplained(t *testing.T) {
	const helpText = "Call the front desk, weekdays 8 to 6."
	const helpPhone = "+1 555 0100"
	srv := StartServer(t, func(c *config.Config) {
		c.Media.TURN.Addr = "127.0.0.1:0"
		c.Media.TURN.AllowPrivatePeers = false // the node is on loopback: the relay refuses it
		c.Clinic.HelpText = helpText
		c.Clinic.HelpPhone = helpPhone
	})
	links := srv.DemoLinks(t)
	patient := NewBrowser(t, WithName("patient"))
	relayOnly(t, patient) // a network where only the relay would get through
	start := time.Now()
	patient.Navigate(t, links[1])

	// Not Poll: it stops at a failed page, which is the point here.
	deadline := time.Now().Add(iceFailTimeout)
	for {
		shown, err := EvalErr[bool](patient, `!document.getElementById('ice-help').hidden`)
		if err == nil && shown {
			break
		}
		if time.Now().After(deadline) {
			patient.Dump(t, "state", `document.body.dataset.state + ' ' + document.getElementById('state').textContent`)
			patient.Dump(t, "ice", `JSON.stringify(window.openvisit.ice)`)
			t.Fatalf("the connection panel never showed (last error: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("ICE failure explained after %v", time.Since(start).Round(time.Second))
	tried := Eval[string](t, patient, `document.getElementById('ice-help').dataset.tried`)
	if !strings.Contains(tried, "turn") {
		t.Errorf("data-tried = %q, want the relay named", tried)
	}
	text := Eval[string](t, patient, `document.getElementById('ice-help').textContent`)
	for _, want := range []string{"relay server (TURN)", "another network", helpText, helpPhone} {
		if !strings.Contains(text, want) {
			t.Errorf("panel does not say %q:\n%s", want, text)
		}
	}
	if href := Eval[string](t, patient, `document.querySelector('#ice-clinic a').getAttribute('href')`); href != "tel:+15550100" {
		t.Errorf("help phone link %q, want tel:+15550100", href)
	}
	if st := Eval[string](t, patient, `document.body.dataset.state`); st != "failed" {
		t.Errorf("page state %q, want failed (a demo link cannot rejoin)", st)
	}
	state := Eval[string](t, patient, `document.getElementById('state').textContent`)
	if strings.Contains(strings.ToLower(state), "reconnecting") || state != "Could not connect" {
		t.Errorf("state reads %q, want \"Could not connect\"", state)
	}
}

// TestE2EICEFailureWaitingPanel: a signed-in patient whose video cannot
// connect is told so while the page keeps trying ("Could not connect;
// trying again…", not "reconnecting"), with what was tried; the provider's
// waiting panel shows the patient's connection as the media node reports
// it: failed, then trying again.
func TestE2EICEFailureWaitingPanel(t *testing.T) {
	ctx := t.Context()
	srv := StartServer(t, func(c *config.Config) {
		c.Media.TURN.Addr = "127.0.0.1:0"
		c.Media.TURN.AllowPrivatePeers = false
		c.Clinic.HelpPhone = "+1 555 0100"
	})
	v := scheduleVisitOn(t, srv, false)
	provider := v.provider
	provider.Click(t, `#visits li[data-visit-id="`+v.visitID+`"] [data-action="join"]`)
	provider.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)

	patient := NewBrowser(t, WithName("patient"))
	relayOnly(t, patient)
	patientJoins(t, patient, v.link, false)
	admit(t, provider)

	const retrying = `document.body.dataset.state === 'reconnecting' && !document.getElementById('ice-help').hidden`
	if err := patient.Poll(ctx, retrying, iceFailTimeout); err != nil {
		patient.Dump(t, "ice", `JSON.stringify(window.openvisit && window.openvisit.ice)`)
		t.Fatalf("patient: %v", err)
	}
	if s := Eval[string](t, patient, `document.getElementById('state').textContent`); s != "Could not connect; trying again…" {
		t.Errorf("patient state reads %q, want \"Could not connect; trying again…\"", s)
	}
	if tried := Eval[string](t, patient, `document.getElementById('ice-help').dataset.tried`); !strings.Contains(tried, "turn") {
		t.Errorf("data-tried = %q, want the relay", tried)
	}
	if !strings.Contains(Eval[string](t, patient, `document.getElementById('ice-clinic').textContent`), "+1 555 0100") {
		t.Error("the clinic's help phone is not shown")
	}
	// The provider's panel: from the media node, via PostgreSQL.
	err := provider.Poll(ctx, `document.querySelector('#room-list [data-state="admitted"] .media-state.tag-danger') !== null`, iceFailTimeout)
	if err != nil {
		provider.Dump(t, "room", `document.getElementById('room-list').textContent`)
		t.Fatalf("provider: the patient's failed connection never showed: %v", err)
	}
	t.Logf("provider sees: %s", Eval[string](t, provider, `document.querySelector('#room-list .media-state').textContent`))
}
