package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// setLocalTime sets a datetime-local input to now+offset in the browser's
// own time zone (typing into its date segments depends on the locale) and
// fires the events a user's edit would.
func setLocalTime(t *testing.T, b *Browser, selector string, offset time.Duration) {
	t.Helper()
	Eval[string](t, b, fmt.Sprintf(`(() => {
  const d = new Date(Date.now() + %d);
  const p = (n) => String(n).padStart(2, '0');
  const e = document.querySelector(%q);
  e.value = d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
  e.dispatchEvent(new Event('input', {bubbles: true}));
  e.dispatchEvent(new Event('change', {bubbles: true}));
  return e.value;
})()`, offset.Milliseconds(), selector))
}

// download is what fetching a download link from the page gives.
type download struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Body   string `json:"body"`
}

// fetchLink fetches the href of the link matching selector from the page,
// as a click would (same origin, the session cookie).
func fetchLink(t *testing.T, b *Browser, selector string) download {
	t.Helper()
	return Eval[download](t, b, fmt.Sprintf(`(async () => {
  const r = await fetch(document.querySelector(%q).href);
  return {status: r.status, type: r.headers.get('Content-Type') || '', body: await r.text()};
})()`, selector))
}

// TestE2EAuditAndBreachPages walks the admin's audit and incident pages: the
// admin finds their own sign-in in the audit trail and exports it, opens a
// patient's access report from a search result, records incidents (one
// close to its notification deadline), scopes a breach by a provider's
// account and sees the counts by state with the notices they call for, and
// downloads the notification list.
func TestE2EAuditAndBreachPages(t *testing.T) {
	srv := StartServer(t, nil)
	pool := openPool(t, srv)

	const adminEmail, adminPassword = "ada.admin@clinic.test", "quartz lantern meadow 7 oboe"
	_, secret := createUser(t, pool, adminEmail, "Ada Admin", store.RoleAdmin)
	const provEmail = "pat.provider@clinic.test"
	prov, _ := createUser(t, pool, provEmail, "Pat Provider", store.RoleProvider)
	olive := seedProviderActivity(t, pool, srv.App.DB(), prov)

	b := NewBrowser(t, WithName("admin"), WithFlag("hide-scrollbars", true))
	b.SetViewport(t, 360, 740)
	codes := enrol(t, b, signaling.SetupURL(srv.URL, secret), adminPassword, "")
	signIn(t, b, adminEmail, adminPassword, codes[0], "/admin")

	checkAuditSearchAndExport(t, b, adminEmail)
	checkAuditLoadOlder(t, b)
	checkPatientAccessReport(t, b, olive, provEmail)
	checkUnknownPatientReport(t, b)
	checkPatientLookup(t, b, olive)
	checkIncidentDeadlines(t, b)
	checkBreachScope(t, b, prov)
	checkNotificationList(t, b)

	b.SetViewport(t, 1280, 800)
	screenshot(t, b, "incidents-1280.png")
}

// auditRows is the JavaScript list of the audit page's result rows.
const auditRows = `[...document.querySelectorAll('#results-body tr')]`

// pageError is the JavaScript for the page's error message, or the empty string when
// none shows.
const pageError = `document.getElementById('error').hidden ? '' : document.getElementById('error').textContent`

// seedProviderActivity records what the provider did: created and viewed an
// Oregon patient's chart, and viewed two Californians, a New Yorker and 501
// Texans (over the media-notice threshold for Texas). It returns the Oregon
// patient.
func seedProviderActivity(t *testing.T, pool *pgxpool.Pool, db *store.DB, prov store.User) store.Patient {
	t.Helper()
	ctx := t.Context()
	log := audit.New(pool)
	newPatient := func(name, state string) store.Patient {
		t.Helper()
		p, err := store.CreatePatient(ctx, db, store.Patient{Name: name, DateOfBirth: "1980-02-03", State: state,
			Email: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.test", Phone: "+1 555 0100", CreatedBy: prov.ID})
		if err != nil {
			t.Fatalf("create patient: %v", err)
		}
		return p
	}
	touch := func(action string, p store.Patient) {
		t.Helper()
		if err := log.Append(ctx, audit.Event{ActorID: string(prov.ID), ActorRole: store.RoleProvider, Action: action,
			ResourceType: "patient", ResourceID: p.ID, PatientID: p.ID, Outcome: audit.Success}); err != nil {
			t.Fatalf("audit: %v", err)
		}
	}
	olive := newPatient("Olive Oregon", "OR")
	touch("patient.create", olive)
	touch("patient.view", olive)
	for _, p := range []store.Patient{newPatient("Cal One", "CA"), newPatient("Cal Two", "CA"), newPatient("Nia York", "NY")} {
		touch("patient.view", p)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO patients (id, name, date_of_birth, state, created_by)
		SELECT gen_random_uuid(), 'Tex ' || g, '1970-01-01', 'TX', $1 FROM generate_series(1, 501) g`, string(prov.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO audit_events (actor_id, actor_role, action, patient_id, outcome)
		SELECT $1, 'provider', 'patient.view', id::text, 'success' FROM patients WHERE state = 'TX'`, string(prov.ID)); err != nil {
		t.Fatal(err)
	}
	return olive
}

// checkAuditSearchAndExport opens the audit trail from the admin page's
// navigation, filters by action to find the admin's own sign-in and nothing
// else, and exports the filtered entries as CSV.
func checkAuditSearchAndExport(t *testing.T, b *Browser, adminEmail string) {
	t.Helper()
	ctx := t.Context()
	b.Click(t, `nav.pages a[href="/audit"]`)
	b.WaitFor(t, ctx, `location.pathname === '/audit' && document.body.dataset.loaded === 'true'`, pageTimeout)
	if e := Eval[string](t, b, pageError); e != "" {
		t.Fatalf("audit page: %s", e)
	}

	// Filter by action: the admin's own sign-in is there, and nothing else.
	b.Fill(t, "#f-action", "auth.login")
	b.Click(t, "#search-submit")
	b.WaitFor(t, ctx, auditRows+`.length > 0 && `+auditRows+`.every((r) => r.dataset.action === 'auth.login')`, pageTimeout)
	if !Eval[bool](t, b, fmt.Sprintf(`%s.some((r) => r.textContent.includes(%q) && r.textContent.includes('success'))`, auditRows, adminEmail)) {
		t.Errorf("audit: no successful auth.login by %s in the results: %s", adminEmail, Eval[string](t, b, `document.getElementById('results-body').textContent`))
	}
	if s := Eval[string](t, b, `document.getElementById('results-status').textContent`); !strings.Contains(s, "shown") {
		t.Errorf("audit: results status %q", s)
	}
	// The export follows the filters and answers a CSV download.
	if href := Eval[string](t, b, `document.getElementById('export-csv').href`); !strings.Contains(href, "action=auth.login") || !strings.Contains(href, "format=csv") {
		t.Errorf("audit: export link %s does not carry the filter", href)
	}
	csv := fetchLink(t, b, "#export-csv")
	if csv.Status != 200 || !strings.HasPrefix(csv.Type, "text/csv") || !strings.HasPrefix(csv.Body, "seq,at,actor_id") || !strings.Contains(csv.Body, "auth.login") {
		t.Errorf("audit export: %d %s %.120q", csv.Status, csv.Type, csv.Body)
	}
	if strings.Contains(csv.Body, "patient.view") {
		t.Error("audit export: holds entries the filter excludes")
	}
	screenshot(t, b, "audit-360.png")
}

// checkAuditLoadOlder clears the filters: there are more entries than a
// page, and "Load older" continues below the oldest entry shown.
func checkAuditLoadOlder(t *testing.T, b *Browser) {
	t.Helper()
	ctx := t.Context()
	b.Click(t, "#search-clear")
	b.Click(t, "#search-submit")
	b.WaitFor(t, ctx, auditRows+`.length === 50 && !document.getElementById('more').hidden`, pageTimeout)
	b.Click(t, "#more")
	b.WaitFor(t, ctx, auditRows+`.length === 100`, pageTimeout)
	if seqs := Eval[[]int](t, b, auditRows+`.map((r) => Number(r.dataset.seq))`); !sortedDesc(seqs) {
		t.Errorf("audit: older entries out of order: %v", seqs)
	}
	if id := Eval[string](t, b, `document.activeElement ? document.activeElement.dataset.seq || '' : ''`); id == "" {
		t.Error("audit: after Load older the focus is not on the first older entry")
	}
}

// checkPatientAccessReport opens the patient's access report from a search
// result's patient link and checks who accessed the chart and how.
func checkPatientAccessReport(t *testing.T, b *Browser, olive store.Patient, provEmail string) {
	t.Helper()
	ctx := t.Context()
	b.Fill(t, "#f-action", "patient.view")
	b.Fill(t, "#f-patient", olive.ID)
	b.Click(t, "#search-submit")
	link := fmt.Sprintf(`#results-body a[data-patient-id=%q]`, olive.ID)
	b.WaitFor(t, ctx, fmt.Sprintf(`document.querySelector(%q) !== null`, link), pageTimeout)
	b.Click(t, link)
	b.WaitFor(t, ctx, `document.getElementById('report-status').textContent.includes('entries by') && !document.getElementById('report-result').hidden`, pageTimeout)
	if q := Eval[string](t, b, `location.search`); q != "?report="+olive.ID {
		t.Errorf("report: address %q, want ?report=%s", q, olive.ID)
	}
	actions := Eval[[]string](t, b, `[...document.querySelectorAll('#report-body tr')].map((r) => r.dataset.action)`)
	if !strings.Contains(strings.Join(actions, ","), "patient.create") || !strings.Contains(strings.Join(actions, ","), "patient.view") {
		t.Errorf("report: actions %v, want patient.create and patient.view", actions)
	}
	if who := Eval[string](t, b, `document.getElementById('report-actors').textContent`); !strings.Contains(who, provEmail) || !strings.Contains(who, "2 entries") {
		t.Errorf("report: accessors %q, want %s with 2 entries", who, provEmail)
	}
	if id := Eval[string](t, b, `document.activeElement ? document.activeElement.id : ''`); id != "report-title" {
		t.Errorf("report: focus on %q, want the report heading", id)
	}
	screenshot(t, b, "audit-report-360.png")
	b.SetViewport(t, 1280, 800)
	screenshot(t, b, "audit-1280.png")
	b.SetViewport(t, 360, 740)
}

// checkUnknownPatientReport asks for the report of an unknown patient: a
// clear message.
func checkUnknownPatientReport(t *testing.T, b *Browser) {
	t.Helper()
	b.Fill(t, "#r-patient", "00000000-0000-4000-8000-000000000000")
	b.Click(t, "#report-submit")
	b.WaitFor(t, t.Context(), `!document.getElementById('error').hidden`, pageTimeout)
	if e := Eval[string](t, b, `document.getElementById('error').textContent`); !strings.Contains(e, "no patient") {
		t.Errorf("report of an unknown patient: %q", e)
	}
}

// checkPatientLookup finds the patient by name and date of birth (their
// fields are ciphertext: the blind indexes answer) and opens their access
// report from the result.
func checkPatientLookup(t *testing.T, b *Browser, olive store.Patient) {
	t.Helper()
	ctx := t.Context()
	b.Fill(t, "#pl-name", "oliv")
	Eval[bool](t, b, fmt.Sprintf(`(() => { document.getElementById('pl-dob').value = %q; return true; })()`, olive.DateOfBirth))
	b.Click(t, "#pl-submit")
	b.WaitFor(t, ctx, `document.querySelector('#pl-results button') !== null`, pageTimeout)
	if got := Eval[string](t, b, `document.getElementById('pl-results').textContent`); !strings.Contains(got, olive.Name) || strings.Contains(got, "Cal One") {
		t.Errorf("lookup: results %q, want only %s", got, olive.Name)
	}
	b.Click(t, "#pl-results button")
	b.WaitFor(t, ctx, fmt.Sprintf(`location.search === %q && document.getElementById('report-status').textContent.includes('entries by')`, "?report="+olive.ID), pageTimeout)
	if q := Eval[string](t, b, `location.search + location.hash`); strings.Contains(strings.ToLower(q), "olive") {
		t.Errorf("lookup: the address %q holds the patient's name", q)
	}
}

// createIncident records an incident discovered ago before now through the
// incidents page's form.
func createIncident(t *testing.T, b *Browser, title string, ago time.Duration) {
	t.Helper()
	n := Eval[int](t, b, `document.querySelectorAll('#incidents li').length`)
	b.Fill(t, "#c-title", title)
	b.Fill(t, "#c-description", "Found during a routine access review.")
	setLocalTime(t, b, "#c-discovered", -ago)
	b.Click(t, "#create-submit")
	b.WaitFor(t, t.Context(), fmt.Sprintf(`document.querySelectorAll('#incidents li').length === %d || !document.getElementById('error').hidden`, n+1), pageTimeout)
	if e := Eval[string](t, b, pageError); e != "" {
		t.Fatalf("create incident %q: %s", title, e)
	}
}

// checkIncidentDeadlines records two incidents: one discovered 55 days ago
// (5 days left, highlighted), one yesterday (59 days left).
func checkIncidentDeadlines(t *testing.T, b *Browser) {
	t.Helper()
	b.Click(t, `nav.pages a[href="/incidents"]`)
	b.WaitFor(t, t.Context(), `location.pathname === '/incidents' && document.body.dataset.loaded === 'true'`, pageTimeout)
	createIncident(t, b, "Lost laptop", 55*24*time.Hour)
	createIncident(t, b, "Shared provider password", 24*time.Hour)
	soon := Eval[[]string](t, b, `[...document.querySelectorAll('#incidents li')].filter((li) => li.querySelector('.deadline-soon')).map((li) => li.textContent)`)
	if len(soon) != 1 || !strings.Contains(soon[0], "Lost laptop") || !strings.Contains(soon[0], "5 days left") {
		t.Errorf("incidents highlighted as due soon: %q, want Lost laptop with 5 days left", soon)
	}
	if !Eval[bool](t, b, `[...document.querySelectorAll('#incidents li')].some((li) => li.textContent.includes('Shared provider password') && li.textContent.includes('59 days left') && !li.querySelector('.deadline-soon'))`) {
		t.Errorf("incidents: Shared provider password does not show 59 days left: %s", Eval[string](t, b, `document.getElementById('incidents').textContent`))
	}
	if sel := Eval[string](t, b, `document.getElementById('s-incident').selectedOptions[0].textContent`); !strings.Contains(sel, "Shared provider password") {
		t.Errorf("scope form: incident %q selected, want the new one", sel)
	}
}

// checkBreachScope scopes the shared password: everything the provider
// touched in the last hour, counted by state with the notices they call
// for, and the patient list paged client-side.
func checkBreachScope(t *testing.T, b *Browser, prov store.User) {
	t.Helper()
	ctx := t.Context()
	b.Fill(t, "#s-actor", string(prov.ID))
	setLocalTime(t, b, "#s-from", -time.Hour)
	b.Click(t, "#scope-submit")
	b.WaitFor(t, ctx, `!document.getElementById('scope-result').hidden || !document.getElementById('error').hidden`, pageTimeout)
	if e := Eval[string](t, b, pageError); e != "" {
		t.Fatalf("scope: %s", e)
	}
	counts := Eval[map[string]string](t, b, `Object.fromEntries([...document.querySelectorAll('#by-state-body tr')].map((r) => [r.dataset.state, r.dataset.count]))`)
	want := map[string]string{"TX": "501", "CA": "2", "NY": "1", "OR": "1"}
	for st, n := range want {
		if counts[st] != n {
			t.Errorf("scope: %s has %q patients, want %s (all: %v)", st, counts[st], n, counts)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("scope: states %v, want %v", counts, want)
	}
	if total := Eval[string](t, b, `document.getElementById('by-state-total').textContent`); total != "505" {
		t.Errorf("scope: total %q, want 505", total)
	}
	if flagged := Eval[[]string](t, b, `[...document.querySelectorAll('#by-state-body tr.flagged')].map((r) => r.dataset.state)`); strings.Join(flagged, ",") != "TX" {
		t.Errorf("scope: states flagged for media notice %v, want TX", flagged)
	}
	if hhs := Eval[string](t, b, `document.getElementById('hhs').textContent`); !strings.Contains(hhs, "notify HHS now") || !strings.Contains(hhs, "TX") {
		t.Errorf("scope: HHS notice %q", hhs)
	}
	// The patient list pages client-side.
	if n := Eval[int](t, b, `document.querySelectorAll('#patients-body tr').length`); n != 25 {
		t.Errorf("scope: %d patients on the first page, want 25", n)
	}
	b.Click(t, "#patients-pager .pager-next")
	b.WaitFor(t, ctx, `document.querySelector('#patients-pager .pager-info').textContent.includes('26–50 of 505')`, pageTimeout)
	screenshot(t, b, "incidents-360.png")
}

// checkNotificationList downloads the notification list as CSV: a header
// and one line per patient in scope.
func checkNotificationList(t *testing.T, b *Browser) {
	t.Helper()
	list := fetchLink(t, b, "#scope-csv")
	if list.Status != 200 || !strings.HasPrefix(list.Type, "text/csv") {
		t.Fatalf("notification list: %d %s %.200q", list.Status, list.Type, list.Body)
	}
	if lines := strings.Count(strings.TrimSpace(list.Body), "\n") + 1; lines != 506 || !strings.HasPrefix(list.Body, "patient_id,name") || !strings.Contains(list.Body, "Olive Oregon") {
		t.Errorf("notification list: %d lines, want a header and 505 patients: %.200q", lines, list.Body)
	}
}

// sortedDesc reports whether s is strictly decreasing.
func sortedDesc(s []int) bool {
	for i := 1; i < len(s); i++ {
		if s[i] >= s[i-1] {
			return false
		}
	}
	return true
}
