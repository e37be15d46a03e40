package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// spanishShot saves a full-page screenshot under dir (the test's temp dir)
// and, through screenshot, checks the page fits its width and copies it to
// OV_E2E_SCREENSHOTS when set.
func spanishShot(t *testing.T, b *Browser, dir, name string) {
	t.Helper()
	screenshot(t, b, name)
	if err := os.WriteFile(filepath.Join(dir, name), b.FullScreenshot(t), 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
	}
}

// inSpanish asserts the page is in Spanish: <html lang="es"> and each
// element's text as given (id → text; a leading ~ means "contains").
func inSpanish(t *testing.T, b *Browser, step string, texts map[string]string) {
	t.Helper()
	if l := Eval[string](t, b, `document.documentElement.lang`); l != "es" {
		t.Errorf("%s: <html lang=%q>, want es", step, l)
	}
	for id, want := range texts {
		got := Eval[string](t, b, fmt.Sprintf(`(document.getElementById(%q) || {textContent: '(missing)'}).textContent.trim()`, id))
		if c, ok := strings.CutPrefix(want, "~"); ok && !strings.Contains(got, c) || !ok && got != want {
			t.Errorf("%s: #%s says %q, want %q", step, id, got, want)
		}
	}
}

// TestE2ESpanishPatientFlow: the provider invites in Spanish; the patient
// goes through the whole flow at 360 px — invite landing and date of birth,
// device check, waiting room, call, ended — and every step is in Spanish
// with <html lang="es">; the patient switches to English and back in the
// waiting room. Screenshots of each step are saved under the test's temp
// dir (and OV_E2E_SCREENSHOTS).
func TestE2ESpanishPatientFlow(t *testing.T) {
	ctx := t.Context()
	shots := t.TempDir()
	v := scheduleVisit(t, false)
	provider := v.provider

	// The provider's choice: Spanish makes a new link in Spanish.
	setValue(t, provider, "#invite-lang", "es")
	provider.WaitFor(t, ctx, fmt.Sprintf(`document.getElementById('invite-link').value !== %q
    && document.getElementById('invite-link').value.includes('#invite=')`, v.link), pageTimeout)
	link := Eval[string](t, provider, `document.getElementById('invite-link').value`)
	spanishShot(t, provider, shots, "es-0-provider-invite.png")
	provider.Click(t, fmt.Sprintf(`#visits li[data-visit-id=%q] [data-action="join"]`, v.visitID))
	provider.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)

	patient := NewBrowser(t, WithName("patient"), WithFlag("hide-scrollbars", true))
	patient.SetViewport(t, 360, 740)
	patient.Navigate(t, link)
	patient.WaitFor(t, ctx, `document.body.dataset.state === 'identity'`, pageTimeout)
	inSpanish(t, patient, "invite landing", map[string]string{
		"identity-title": "Entrar a su consulta por video", "dob-submit": "Continuar", "step": "Paso 1 de 3",
	})
	if m := Eval[string](t, patient, `document.querySelector('#dob-month option[value="03"]').textContent`); m != "marzo" {
		t.Errorf("date of birth: month 3 is %q, want marzo", m)
	}
	if title := Eval[string](t, patient, `document.title`); !strings.HasPrefix(title, "Entrar a su consulta") {
		t.Errorf("title %q", title)
	}
	spanishShot(t, patient, shots, "es-1-landing-360.png")

	// A wrong date first: the refusal is in Spanish too.
	fillDOB(t, patient, "1990-01-01")
	patient.WaitFor(t, ctx, `!document.getElementById('dob-error').hidden`, pageTimeout)
	inSpanish(t, patient, "wrong date of birth", map[string]string{"dob-error": "~no coincide con nuestros registros"})
	spanishShot(t, patient, shots, "es-2-dob-error-360.png")

	fillDOB(t, patient, patientDOB)
	patient.WaitFor(t, ctx, `document.body.dataset.state === 'devices' && !document.getElementById('devices-ok').disabled
    && document.getElementById('preview').videoWidth > 0`, pageTimeout)
	patient.Click(t, "#tone")
	patient.WaitFor(t, ctx, `!document.getElementById('heard').hidden`, pageTimeout)
	patient.Click(t, "#heard-yes")
	inSpanish(t, patient, "device check", map[string]string{
		"devices-title": "Revise su cámara y su sonido", "sound-hint": "Su sonido funciona.",
		"devices-ok": "Continuar a la sala de espera", "support": "~Conexión segura",
	})
	spanishShot(t, patient, shots, "es-3-devices-360.png")

	patient.Click(t, "#devices-ok")
	patient.WaitFor(t, ctx, `document.body.dataset.state === 'waiting' && window.openvisit.visitState !== null
    && document.getElementById('waiting-when').textContent !== ''`, pageTimeout)
	inSpanish(t, patient, "waiting room", map[string]string{
		"waiting-title": "Está en la sala de espera", "waiting-text": "Su proveedor de salud le dará entrada. Mantenga esta página abierta.",
		"waiting-when": "~Su consulta está programada para el ",
	})
	// The time in the patient's locale: a Spanish weekday from Intl.
	if when := Eval[string](t, patient, `document.getElementById('waiting-when').textContent`); !containsAny(when,
		"lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo") {
		t.Errorf("waiting room: the time %q is not in Spanish", when)
	}
	spanishShot(t, patient, shots, "es-4-waiting-360.png")

	// The patient switches to English and back: the page follows at once.
	setValue(t, patient, "#lang-select", "en")
	patient.WaitFor(t, ctx, `document.documentElement.lang === 'en'
    && document.getElementById('waiting-title').textContent === 'You are in the waiting room'
    && document.getElementById('waiting-when').textContent.startsWith('Your visit is scheduled for')`, pageTimeout)
	setValue(t, patient, "#lang-select", "es")
	patient.WaitFor(t, ctx, `document.documentElement.lang === 'es'
    && document.getElementById('waiting-title').textContent === 'Está en la sala de espera'`, pageTimeout)

	admit(t, provider)
	patient.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)
	call := callPair{provider: provider, patient: patient}
	ids := call.selves(t)
	call.wait(t, patient, "media from the provider", mediaFrom(ids[provider]))
	inSpanish(t, patient, "call", map[string]string{
		"state": "Conectado", "mute": "Silenciar", "camera": "Apagar cámara", "leave": "Salir",
	})
	if v := Eval[string](t, patient, `document.getElementById('lang-select').value`); v != "es" {
		t.Errorf("call: the language switch shows %q, want es (remembered from the waiting room)", v)
	}
	spanishShot(t, patient, shots, "es-5-call-360.png")

	provider.Click(t, "#end-visit")
	provider.WaitFor(t, ctx, `document.querySelector('dialog[open] #confirm-ok') !== null`, pageTimeout)
	provider.Click(t, "#confirm-ok")
	patient.WaitFor(t, ctx, `!document.getElementById('ended').hidden`, pageTimeout)
	inSpanish(t, patient, "ended", map[string]string{
		"ended-title":  "La consulta ha terminado",
		"ended-reason": "Su proveedor de salud terminó la consulta. Gracias; puede cerrar esta página.",
	})
	spanishShot(t, patient, shots, "es-6-ended-360.png")
	t.Logf("screenshots in %s", shots)
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
