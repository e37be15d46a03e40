package app_test

import (
	"context"
	"encoding/csv"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/store"
)

func TestBreachReportScope(t *testing.T) {
	s := startServer(t)
	adm := s.enrol(t, "admin@clinic.test", "admin")
	prov := s.enrol(t, "p@clinic.test", "provider")
	b := &breach{s: s, ctx: context.Background(), prov: prov, log: audit.New(s.Pool)}
	outside := b.seedSuspectTouches(t)

	c := s.newClient(t)
	c.mustLogin(adm)
	inc := createIncident(t, c)
	q := url.Values{"actor_id": {breachSuspect}, "from": {time.Now().Add(-time.Hour).Format(time.RFC3339)}, "to": {time.Now().Add(time.Hour).Format(time.RFC3339)}}
	checkActorScope(t, c, inc.ID, q, outside)
	b.checkKeyScope(t, c, inc.ID, q)
	checkNotificationList(t, s, c, inc.ID, q)
	checkIncidentUpdates(t, c, inc.ID)
}

// breachSuspect is the actor whose accesses a breach scope is asked about.
const breachSuspect = "suspect-actor-id"

// breach is what the steps of TestBreachReportScope share: the provider
// who owns the patients, and the audit log the suspect's accesses go to.
type breach struct {
	s    *server
	ctx  context.Context
	prov staff
	log  *audit.Log
}

func (b *breach) newPatient(t *testing.T, state string) store.Patient {
	t.Helper()
	p, err := store.CreatePatient(b.ctx, b.s.App.DB(), store.Patient{Name: "P " + uuid.NewString()[:6], DateOfBirth: "1980-01-01",
		State: state, Email: "p@example.test", CreatedBy: b.prov.ID})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// touch appends e to the audit log, a success unless it says otherwise.
func (b *breach) touch(t *testing.T, e audit.Event) {
	t.Helper()
	if e.Outcome == "" {
		e.Outcome = audit.Success
	}
	if err := b.log.Append(b.ctx, e); err != nil {
		t.Fatal(err)
	}
}

// seedSuspectTouches makes the suspect touch 505 patients (2 in CA, 1 in
// NY, 1 with no state, 501 in TX) and returns three patients that are out
// of scope.
func (b *breach) seedSuspectTouches(t *testing.T) (outside []store.Patient) {
	t.Helper()
	// Touched directly: two Californians.
	ca1, ca2 := b.newPatient(t, "CA"), b.newPatient(t, "CA")
	b.touch(t, audit.Event{ActorID: breachSuspect, Action: "patient.view", PatientID: ca1.ID})
	b.touch(t, audit.Event{ActorID: breachSuspect, Action: "patient.view", PatientID: ca2.ID})
	b.touch(t, audit.Event{ActorID: breachSuspect, Action: "patient.view", PatientID: ca2.ID}) // counted once
	// Touched through a visit: a New Yorker, and one with no state on file.
	ny := b.newPatient(t, "NY")
	nostate := b.newPatient(t, "")
	for _, p := range []store.Patient{ny, nostate} {
		v := b.s.newVisit(t, b.prov.ID)
		if _, err := b.s.Pool.Exec(b.ctx, `UPDATE visits SET patient_id = $1 WHERE id = $2`, p.ID, string(v)); err != nil {
			t.Fatal(err)
		}
		b.touch(t, audit.Event{ActorID: breachSuspect, Action: "visit.view", VisitID: string(v)})
	}
	// Not touched: denied access, another actor, and out of the time range.
	denied, other, early := b.newPatient(t, "CA"), b.newPatient(t, "CA"), b.newPatient(t, "CA")
	b.touch(t, audit.Event{ActorID: breachSuspect, Action: "patient.view", PatientID: denied.ID, Outcome: audit.Denied})
	b.touch(t, audit.Event{ActorID: "someone-else", Action: "patient.view", PatientID: other.ID})
	b.touch(t, audit.Event{ActorID: breachSuspect, Action: "patient.view", PatientID: early.ID, At: time.Now().Add(-48 * time.Hour)})
	// 501 Texans: over the media-notice threshold for Texas.
	if _, err := b.s.Pool.Exec(b.ctx, `INSERT INTO patients (id, name, date_of_birth, state, created_by)
		SELECT gen_random_uuid(), 'TX ' || g, '1970-01-01', 'TX', $1 FROM generate_series(1, 501) g`, string(b.prov.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.s.Pool.Exec(b.ctx, `INSERT INTO audit_events (actor_id, action, patient_id, outcome)
		SELECT $1, 'patient.view', id::text, 'success' FROM patients WHERE state = 'TX'`, breachSuspect); err != nil {
		t.Fatal(err)
	}
	return []store.Patient{denied, other, early}
}

// createIncident opens an incident discovered an hour ago; its
// notification deadline is 60 days after discovery.
func createIncident(t *testing.T, c *client) store.Incident {
	t.Helper()
	discovered := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	r := c.do("POST", "/api/v1/admin/incidents", map[string]string{"title": "Shared credentials", "discovered_at": discovered.Format(time.RFC3339)})
	if r.Status != 201 {
		t.Fatalf("create incident: %d %s", r.Status, r.Body)
	}
	var inc store.Incident
	r.decode(t, &inc)
	if !inc.NotifyBy.Equal(discovered.Add(60 * 24 * time.Hour)) {
		t.Errorf("notify_by %s, want 60 days after discovery %s", inc.NotifyBy, discovered)
	}
	return inc
}

// checkActorScope: the suspect's scope counts each patient once, by state,
// and leaves out the patients outside it.
func checkActorScope(t *testing.T, c *client, incident string, q url.Values, outside []store.Patient) {
	t.Helper()
	var got struct{ Scope store.Scope }
	r := c.do("GET", "/api/v1/admin/incidents/"+incident+"/scope?"+q.Encode(), nil)
	if r.Status != 200 {
		t.Fatalf("scope: %d %s", r.Status, r.Body)
	}
	r.decode(t, &got)
	sc := got.Scope
	if sc.Total != 505 || sc.ByState["CA"] != 2 || sc.ByState["NY"] != 1 || sc.ByState["TX"] != 501 || sc.UnknownState != 1 {
		t.Errorf("scope total %d by state %v unknown %d; want 505, CA 2, NY 1, TX 501, unknown 1", sc.Total, sc.ByState, sc.UnknownState)
	}
	if strings.Join(sc.MediaNoticeStates, ",") != "TX" || !sc.HHSImmediate {
		t.Errorf("media notice states %v, HHS immediate %v; want [TX], true", sc.MediaNoticeStates, sc.HHSImmediate)
	}
	for _, p := range sc.Patients {
		if slices.ContainsFunc(outside, func(o store.Patient) bool { return o.ID == p.ID }) {
			t.Errorf("patient %s should not be in scope", p.ID)
		}
	}
}

// checkKeyScope: by key, the scope is the recordings sealed under a
// compromised KEK in the window.
func (b *breach) checkKeyScope(t *testing.T, c *client, incident string, q url.Values) {
	t.Helper()
	v := b.s.newVisit(t, b.prov.ID)
	keyed := b.newPatient(t, "WA")
	_, _ = b.s.Pool.Exec(b.ctx, `UPDATE visits SET patient_id = $1 WHERE id = $2`, keyed.ID, string(v))
	recID := uuid.NewString()
	if _, err := b.s.Pool.Exec(b.ctx, `INSERT INTO recordings (id, visit_id, participant_id, kek_id, wrapped_dek, segment_size, started_at, delete_after)
		VALUES ($1, $2, $3, 'kek-compromised', '\x00', 1048576, now(), now() + interval '1 year')`, recID, string(v), uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	var got struct{ Scope store.Scope }
	q = url.Values{"kek_id": {"kek-compromised"}, "from": q["from"], "to": q["to"]}
	c.do("GET", "/api/v1/admin/incidents/"+incident+"/scope?"+q.Encode(), nil).decode(t, &got)
	if got.Scope.Total != 1 || got.Scope.Patients[0].ID != keyed.ID || len(got.Scope.RecordingIDs) != 1 || got.Scope.RecordingIDs[0] != recID {
		t.Errorf("key scope = %+v, want the one patient and recording", got.Scope)
	}
}

// checkNotificationList: the suspect's notification list exports as CSV,
// and each of the three scope queries so far was audited.
func checkNotificationList(t *testing.T, s *server, c *client, incident string, q url.Values) {
	t.Helper()
	r := c.do("GET", "/api/v1/admin/incidents/"+incident+"/scope?"+url.Values{"actor_id": {breachSuspect}, "from": q["from"], "to": q["to"], "format": {"csv"}}.Encode(), nil)
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil || len(rows) != 506 || rows[0][1] != "name" {
		t.Fatalf("notification list: %d rows (%v), want header + 505", len(rows), err)
	}
	if n := s.auditCount(t, "incident.scope", "success", ""); n != 3 {
		t.Errorf("%d scope queries audited, want 3", n)
	}
}

// checkIncidentUpdates: an incident's status moves only to a known one, and
// a bad scope query gets a clear error.
func checkIncidentUpdates(t *testing.T, c *client, incident string) {
	t.Helper()
	if r := c.do("POST", "/api/v1/admin/incidents/"+incident+"/status", map[string]string{"status": "notified"}); r.Status != 200 {
		t.Errorf("incident status: %d %s", r.Status, r.Body)
	}
	if r := c.do("POST", "/api/v1/admin/incidents/"+incident+"/status", map[string]string{"status": "forgotten"}); r.Status != 400 {
		t.Errorf("bad incident status: %d", r.Status)
	}

	// Bad queries get clear errors.
	if r := c.do("GET", "/api/v1/admin/incidents/"+incident+"/scope?actor_id=x&kek_id=y&from=a&to=b", nil); r.Status != 400 || r.code() != "bad_scope" {
		t.Errorf("both actor and key: %d %s", r.Status, r.Body)
	}
}

func TestAuditSearchExportAndPatientReport(t *testing.T) {
	s := startServer(t)
	adm := s.enrol(t, "admin@clinic.test", "admin")
	prov := s.enrol(t, "p@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	var p store.Patient
	pc.do("POST", "/api/v1/patients", map[string]string{"name": "Report Subject", "date_of_birth": "1985-05-05", "state": "OR"}).decode(t, &p)
	pc.do("GET", "/api/v1/patients/"+p.ID, nil)

	c := s.newClient(t)
	c.mustLogin(adm)
	var rep struct {
		Entries []struct{ Action, ActorID, Hash string }
		Actors  map[string]string
	}
	r := c.do("GET", "/api/v1/admin/patients/"+p.ID+"/access-report", nil)
	if r.Status != 200 {
		t.Fatalf("access report: %d %s", r.Status, r.Body)
	}
	r.decode(t, &rep)
	actions := map[string]bool{}
	for _, e := range rep.Entries {
		actions[e.Action] = true
		if e.ActorID == string(prov.ID) && rep.Actors[e.ActorID] != prov.Email {
			t.Errorf("actor %s not named in the report", e.ActorID)
		}
	}
	if !actions["patient.create"] || !actions["patient.view"] {
		t.Errorf("access report actions %v, want patient.create and patient.view", actions)
	}

	var search struct{ Entries []struct{ Action string } }
	c.do("GET", "/api/v1/admin/audit?actor="+string(prov.ID)+"&action=patient.view", nil).decode(t, &search)
	if len(search.Entries) != 1 {
		t.Errorf("search by actor and action: %d entries, want 1", len(search.Entries))
	}
	if r := c.do("GET", "/api/v1/admin/audit?outcome=maybe", nil); r.Status != 400 {
		t.Errorf("bad outcome filter: %d", r.Status)
	}

	r = c.do("GET", "/api/v1/admin/audit/export?format=json", nil)
	var exp struct {
		Format  string
		Entries []struct {
			Seq      int64
			PrevHash string `json:"prev_hash"`
			Hash     string
		}
	}
	if r.Status != 200 {
		t.Fatalf("export: %d %s", r.Status, r.Body)
	}
	r.decode(t, &exp)
	if exp.Format != "openvisit.audit.v1" || len(exp.Entries) < 5 {
		t.Fatalf("export: format %q, %d entries", exp.Format, len(exp.Entries))
	}
	for i := 1; i < len(exp.Entries); i++ {
		if exp.Entries[i].Seq != exp.Entries[i-1].Seq+1 {
			t.Fatalf("export is not in chain order at %d", i)
		}
	}
	r = c.do("GET", "/api/v1/admin/audit/export?format=csv", nil)
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil || len(rows) < 6 || rows[0][len(rows[0])-1] != "hash" {
		t.Fatalf("csv export: %d rows, %v", len(rows), err)
	}
	if r := c.do("GET", "/api/v1/admin/audit?action=audit.export", nil); !strings.Contains(string(r.Body), "csv") {
		t.Errorf("the export's own audit entry does not say what was exported: %s", r.Body)
	}
}
