package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/openvisit/openvisit/internal/config"
)

// chatTexts is what the chat shows, in order, on a page.
const chatTexts = `[...document.querySelectorAll('#chat-log li .chat-text')].map((p) => p.textContent)`

// sendChat types a message into b's chat panel and sends it.
func sendChat(t *testing.T, b *Browser, text string) {
	t.Helper()
	// The value is set in the page (Fill's key events are slow on a
	// loaded machine); the send button is clicked as a person would.
	Eval[bool](t, b, fmt.Sprintf(`(() => { const i = document.getElementById('chat-input'); i.value = %q;
    i.dispatchEvent(new Event('input')); return true; })()`, text))
	b.Click(t, "#chat-send")
	b.WaitFor(t, t.Context(), `document.getElementById('chat-input').value === ''`, pageTimeout)
}

// TestE2EChat: the provider and the admitted patient chat in the call; the
// messages arrive on both pages in one order (each sent after the previous
// one arrived, and a burst of two); the log is a polite live region; an
// over-long message is refused with a clear error; the database — the
// table and a pg_dump — holds no plaintext; the server log holds none; and
// after the visit the provider reads the transcript from the schedule.
func TestE2EChat(t *testing.T) {
	ctx := t.Context()
	v := scheduleVisit(t, false)
	provider := v.provider
	provider.Click(t, fmt.Sprintf(`#visits li[data-visit-id=%q] [data-action="join"]`, v.visitID))
	provider.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)
	patient := NewBrowser(t, WithName("patient"))
	patient.SetViewport(t, 360, 740)
	patientJoins(t, patient, v.link, false)
	// The device check's network check finished with its three results
	// and advice (it advises only: the patient went on meanwhile).
	patient.WaitFor(t, ctx, `document.getElementById('network').dataset.state === 'done'
    && document.querySelectorAll('#network-checks li').length === 3
    && document.getElementById('network-advice').textContent.length > 0`, callTimeout)
	t.Logf("network check: %s (relay %s)", Eval[string](t, patient, `[...document.querySelectorAll('#network-checks li')].map((l) => l.textContent).join('; ')`),
		Eval[string](t, patient, `document.getElementById('network').dataset.relay`))
	admit(t, provider)
	patient.WaitFor(t, ctx, `location.pathname === '/call' && document.body.dataset.state === 'connected'
    && !document.getElementById('chat').hidden`, callTimeout)

	if role := Eval[string](t, patient, `document.getElementById('chat-log').getAttribute('role') + '/' +
    document.getElementById('chat-log').getAttribute('aria-live')`); role != "log/polite" {
		t.Errorf("the chat log is %q, want role=log aria-live=polite", role)
	}
	msgs := []string{"Zephyrine: can you hear me?", "Yes, loud and clear", "Please hold the ointment up to the camera",
		"One moment", "Here it is"}
	sendChat(t, provider, msgs[0])
	waitChat(t, patient, msgs[:1])
	sendChat(t, patient, msgs[1])
	waitChat(t, provider, msgs[:2])
	sendChat(t, provider, msgs[2])
	sendChat(t, patient, msgs[3]) // may cross the provider's on the wire: the order is the server's
	sendChat(t, patient, msgs[4])
	for _, b := range []*Browser{provider, patient} {
		b.WaitFor(t, ctx, chatTexts+`.length === 5`, pageTimeout)
	}
	got := map[*Browser]string{}
	for _, b := range []*Browser{provider, patient} {
		got[b] = strings.Join(Eval[[]string](t, b, chatTexts), "|")
		if mine := Eval[int](t, b, `document.querySelectorAll('#chat-log li.mine').length`); mine < 2 {
			t.Errorf("%s: %d of its own messages marked as its own", b.Name, mine)
		}
	}
	screenshot(t, patient, "chat-360.png")
	if got[provider] != got[patient] {
		t.Errorf("the pages disagree on the order:\nprovider %s\npatient  %s", got[provider], got[patient])
	}
	if !strings.HasPrefix(got[provider], strings.Join(msgs[:3], "|")) {
		t.Errorf("the first messages are out of order: %s", got[provider])
	}

	// Too long: the page says why, and sends nothing.
	Eval[bool](t, patient, `(() => { const i = document.getElementById('chat-input'); i.value = 'x'.repeat(2001); return true; })()`)
	patient.Click(t, "#chat-send")
	patient.WaitFor(t, ctx, `!document.getElementById('chat-error').hidden
    && document.getElementById('chat-error').textContent.includes('2000')`, pageTimeout)

	checkChatStorage(t, v, msgs)

	// Afterwards the provider reads the transcript from the schedule.
	endVisitForEveryone(t, provider, patient)
	provider.Navigate(t, v.srv.URL+"/provider")
	item := fmt.Sprintf(`#visits li[data-visit-id=%q]`, v.visitID)
	provider.WaitFor(t, ctx, fmt.Sprintf(`document.querySelector('%s [data-action="chat"]') !== null`, item), pageTimeout)
	provider.Click(t, item+` [data-action="chat"]`)
	provider.WaitFor(t, ctx, fmt.Sprintf(`document.querySelectorAll('%s .transcript li').length === 5`, item), pageTimeout)
	if shown := strings.Join(Eval[[]string](t, provider, fmt.Sprintf(
		`[...document.querySelectorAll('%s .transcript .chat-text')].map((p) => p.textContent)`, item)), "|"); shown != got[provider] {
		t.Errorf("the transcript shows %s, want %s", shown, got[provider])
	}
}

// waitChat waits until b's chat shows want, in order.
func waitChat(t *testing.T, b *Browser, want []string) {
	t.Helper()
	b.WaitFor(t, t.Context(), fmt.Sprintf(`JSON.stringify(%s) === %q`, chatTexts, mustJSON(want)), pageTimeout)
}

func mustJSON(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// checkChatStorage: the table holds five sealed rows of the visit and no
// plaintext; a pg_dump holds none of the texts; each message has an audit
// entry by its ID; the server log holds none of the texts.
func checkChatStorage(t *testing.T, v visitSetup, msgs []string) {
	t.Helper()
	ctx := t.Context()
	pool := openPool(t, v.srv)
	var n, plain, audited int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(body) FROM chat_messages WHERE visit_id = $1`, v.visitID).Scan(&n, &plain); err != nil {
		t.Fatal(err)
	}
	if n != len(msgs) || plain != 0 {
		t.Errorf("chat_messages: %d rows, %d with plaintext; want %d and 0", n, plain, len(msgs))
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_events a JOIN chat_messages m ON m.id::text = a.resource_id
		WHERE a.action = 'chat.send' AND a.visit_id = $1`, v.visitID).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != len(msgs) {
		t.Errorf("%d messages audited by ID, want %d", audited, len(msgs))
	}
	dump := pgDumpOf(t, v.srv.DatabaseURL)
	if !strings.Contains(dump, v.visitID) {
		t.Fatal("the dump lacks the visit: not a dump of the test's database")
	}
	logs := v.srv.Logs()
	for _, m := range msgs {
		if strings.Contains(dump, m) {
			t.Errorf("the database dump holds %q", m)
		}
		if strings.Contains(logs, m) {
			t.Errorf("the server log holds %q", m)
		}
	}
	if strings.Contains(strings.ToLower(dump), "zephyrine") {
		t.Error("the database dump holds a word of a message")
	}
}

// pgDumpOf runs a real pg_dump of the database at dsn.
func pgDumpOf(t *testing.T, dsn string) string {
	t.Helper()
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		bin = "/usr/lib/postgresql/15/bin/pg_dump"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("pg_dump not found")
		}
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "--no-owner", "--dbname", dsn)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("pg_dump: %v: %s", err, errOut.String())
	}
	return out.String()
}

// TestE2ENetworkCheckTURNTCP: the device check reaches the media node's
// relay over TURN/TLS (the only relay URL, on TCP) and says so; without a
// relay (TestE2EChat) it reports none.
func TestE2ENetworkCheckTURNTCP(t *testing.T) {
	srv := StartServer(t, func(c *config.Config) {
		c.Media.TURN.TLSAddr = "127.0.0.1:0"
		c.Media.TURN.AllowPrivatePeers = true // the SFU is on loopback
	})
	v := scheduleVisitOn(t, srv, false)
	patient := NewBrowser(t, WithName("patient"))
	patient.SetViewport(t, 360, 740)
	patientJoins(t, patient, v.link, false)
	patient.WaitFor(t, t.Context(), `document.getElementById('network').dataset.state === 'done'`, callTimeout)
	if relay := Eval[string](t, patient, `document.getElementById('network').dataset.relay`); relay != "ok" {
		t.Errorf("relay over TCP: %q, want ok; checks: %s", relay,
			Eval[string](t, patient, `document.getElementById('network-checks').textContent`))
	}
	// Back to the device check from the waiting room: the results stay.
	patient.Click(t, "#waiting-devices")
	patient.WaitFor(t, t.Context(), `document.body.dataset.state === 'devices'`, pageTimeout)
	screenshot(t, patient, "device-check-network-360.png")
}
