package app_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// reportEntry is an access-report entry as the admin API shows it.
type reportEntry struct {
	Action    string
	ActorID   string `json:"actor_id"`
	PatientID string `json:"patient_id"`
	VisitID   string `json:"visit_id"`
	Reason    string
}

// accessReport returns the patient's access report entries by actor.
func (c *client) accessReport(patient, actor string) []reportEntry {
	c.t.Helper()
	r := c.do("GET", "/api/v1/admin/patients/"+patient+"/access-report", nil)
	if r.Status != 200 {
		c.t.Fatalf("access report: %d %s", r.Status, r.Body)
	}
	var rep struct{ Entries []reportEntry }
	r.decode(c.t, &rep)
	var out []reportEntry
	for _, e := range rep.Entries {
		if e.ActorID == actor {
			out = append(out, e)
		}
	}
	return out
}

// scopeOf returns the patient IDs an incident's scope over actor counts,
// for a window from an hour ago to an hour ahead.
func (c *client) scopeOf(incident, actor string) map[string]bool {
	c.t.Helper()
	q := url.Values{"actor_id": {actor}, "from": {time.Now().Add(-time.Hour).Format(time.RFC3339)},
		"to": {time.Now().Add(time.Hour).Format(time.RFC3339)}}
	r := c.do("GET", "/api/v1/admin/incidents/"+incident+"/scope?"+q.Encode(), nil)
	if r.Status != 200 {
		c.t.Fatalf("scope: %d %s", r.Status, r.Body)
	}
	var got struct{ Scope store.Scope }
	r.decode(c.t, &got)
	out := map[string]bool{}
	for _, p := range got.Scope.Patients {
		out[p.ID] = true
	}
	if got.Scope.Total != len(out) {
		c.t.Fatalf("scope total %d, %d patients listed", got.Scope.Total, len(out))
	}
	return out
}

// has reports whether entries hold one with action naming patient.
func has(entries []reportEntry, action, patient string) bool {
	for _, e := range entries {
		if e.Action == action && e.PatientID == patient {
			return true
		}
	}
	return false
}

// The views that show patient names name those patients in the audit
// trail: the schedule, search results, the visit state and its event
// stream. The patients and visits are made in the database directly, so
// that only the views under test can have named them.
func TestScheduleViewAuditsPatients(t *testing.T) {
	s := startServer(t)
	adm := s.enrol(t, "admin@clinic.test", "admin")
	vr := &viewsRig{s: s, ctx: context.Background(), provA: s.enrol(t, "a@clinic.test", "provider"), provB: s.enrol(t, "b@clinic.test", "provider")}
	p1, p2 := vr.newPatient(t, vr.provA.ID), vr.newPatient(t, vr.provA.ID)
	v1, v2 := vr.schedule(t, p1, 2*time.Hour), vr.schedule(t, p2, 3*time.Hour)

	vr.ac = s.newClient(t)
	vr.ac.mustLogin(adm)
	var inc store.Incident
	vr.ac.do("POST", "/api/v1/admin/incidents", map[string]string{"title": "Provider laptop stolen",
		"discovered_at": time.Now().Add(-time.Minute).Format(time.RFC3339)}).decode(t, &inc)
	vr.incident = inc.ID
	if sc := vr.ac.scopeOf(inc.ID, string(vr.provA.ID)); len(sc) != 0 {
		t.Fatalf("before any view the scope holds %d patients", len(sc))
	}

	vr.pa = s.newClient(t)
	vr.pa.mustLogin(vr.provA)
	t.Run("schedule", func(t *testing.T) { vr.scheduleView(t, p1, p2) })
	t.Run("search", vr.search)
	t.Run("state", func(t *testing.T) {
		r := vr.pa.do("GET", "/api/v1/visits/"+string(v1)+"/state", nil)
		if r.Status != 200 {
			t.Fatalf("state: %d %s", r.Status, r.Body)
		}
		if !has(vr.ac.accessReport(p1.ID, string(vr.provA.ID)), "visit.view", p1.ID) {
			t.Error("the state view's audit entry does not name the patient it shows")
		}
	})
	t.Run("admin lookup", func(t *testing.T) { vr.adminLookup(t, string(adm.ID), p1) })
	t.Run("event stream", func(t *testing.T) { vr.eventStream(t, v2, p2) })
}

// adminLookup: the admin finds a patient by name and date of birth (the
// fields are ciphertext; the blind indexes answer), and the patients shown
// are named in the audit trail; a lookup without a date of birth is refused.
func (vr *viewsRig) adminLookup(t *testing.T, admin string, p store.Patient) {
	var found struct{ Patients []store.Patient }
	r := vr.ac.do("GET", "/api/v1/admin/patients?"+url.Values{"name": {"listed pat"}, "date_of_birth": {p.DateOfBirth}}.Encode(), nil)
	if r.Status != 200 {
		t.Fatalf("lookup: %d %s", r.Status, r.Body)
	}
	r.decode(t, &found)
	if !slices.ContainsFunc(found.Patients, func(q store.Patient) bool { return q.ID == p.ID && q.Name == p.Name }) {
		t.Fatalf("the lookup by name and date of birth did not find %s: %+v", p.ID, found.Patients)
	}
	if !has(vr.ac.accessReport(p.ID, admin), "patient.view", p.ID) {
		t.Error("the admin's lookup is not in the patient's access report")
	}
	if r := vr.ac.do("GET", "/api/v1/admin/patients?name=listed", nil); r.Status != 400 || !strings.Contains(string(r.Body), "bad_lookup") {
		t.Errorf("a lookup without a date of birth: %d %s, want 400 bad_lookup", r.Status, r.Body)
	}
}

// viewsRig is what the steps of TestScheduleViewAuditsPatients share: two
// providers (provA's client pa), an admin's client ac and the incident
// whose scope shows which patients a provider's views named.
type viewsRig struct {
	s            *server
	ctx          context.Context
	provA, provB staff
	pa, ac       *client
	incident     string
}

// newPatient makes a patient of by in the database directly.
func (vr *viewsRig) newPatient(t *testing.T, by ids.UserID) store.Patient {
	t.Helper()
	p, err := store.CreatePatient(vr.ctx, vr.s.App.DB(), store.Patient{Name: "Listed Patient", DateOfBirth: "1975-04-03", State: "CA", CreatedBy: by})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// schedule makes a visit of provA with p, starting in in, in the database
// directly.
func (vr *viewsRig) schedule(t *testing.T, p store.Patient, in time.Duration) ids.VisitID {
	t.Helper()
	v := ids.NewVisitID()
	start := vr.s.Clock.Now().Add(in).Truncate(time.Minute)
	if err := store.ScheduleVisit(vr.ctx, vr.s.App.DB(), v, vr.provA.ID, p.ID, "local", start, start.Add(30*time.Minute), "check-up"); err != nil {
		t.Fatal(err)
	}
	return v
}

// scheduleView: provA's schedule names both patients, and each gets one
// audit entry that names them.
func (vr *viewsRig) scheduleView(t *testing.T, p1, p2 store.Patient) {
	var list struct{ Visits []store.ScheduledVisit }
	r := vr.pa.do("GET", "/api/v1/visits", nil)
	if r.Status != 200 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	r.decode(t, &list)
	if len(list.Visits) != 2 || list.Visits[0].PatientName == "" {
		t.Fatalf("the schedule shows %d visits (%+v), want 2 with names", len(list.Visits), list.Visits)
	}
	for _, p := range []store.Patient{p1, p2} {
		if !has(vr.ac.accessReport(p.ID, string(vr.provA.ID)), "visit.list", p.ID) {
			t.Errorf("patient %s's access report lacks the schedule view", p.ID)
		}
	}
	sc := vr.ac.scopeOf(vr.incident, string(vr.provA.ID))
	if len(sc) != 2 || !sc[p1.ID] || !sc[p2.ID] {
		t.Errorf("the incident scope over the provider counts %v, want both listed patients", sc)
	}
	if n := vr.s.auditCount(t, "visit.list", "success", ""); n != 2 {
		t.Errorf("%d schedule entries, want one per patient shown (2)", n)
	}
}

// search: the patients a search by provB finds are named in the audit
// trail.
func (vr *viewsRig) search(t *testing.T) {
	p3, p4 := vr.newPatient(t, vr.provB.ID), vr.newPatient(t, vr.provB.ID)
	pb := vr.s.newClient(t)
	pb.mustLogin(vr.provB)
	if sc := vr.ac.scopeOf(vr.incident, string(vr.provB.ID)); len(sc) != 0 {
		t.Fatalf("before the search the scope holds %d patients", len(sc))
	}
	var found struct{ Patients []store.Patient }
	pb.do("GET", "/api/v1/patients?q=listed", nil).decode(t, &found)
	if len(found.Patients) != 2 {
		t.Fatalf("search found %d patients, want 2", len(found.Patients))
	}
	for _, p := range []store.Patient{p3, p4} {
		if !has(vr.ac.accessReport(p.ID, string(vr.provB.ID)), "patient.view", p.ID) {
			t.Errorf("patient %s's access report lacks the search", p.ID)
		}
	}
	if sc := vr.ac.scopeOf(vr.incident, string(vr.provB.ID)); len(sc) != 2 || !sc[p3.ID] || !sc[p4.ID] {
		t.Errorf("the incident scope over the searcher counts %v, want both found patients", sc)
	}
}

// eventStream: visit v's event stream names its patient p once for a run
// of snapshots, and again once a snapshot comes long after the last entry.
func (vr *viewsRig) eventStream(t *testing.T, v ids.VisitID, p store.Patient) {
	views := func() int {
		var n int
		if err := vr.s.Pool.QueryRow(vr.ctx, `SELECT count(*) FROM audit_events WHERE action = 'visit.view'
			AND visit_id = $1 AND patient_id = $2`, string(v), p.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	notify := func() {
		if _, err := vr.s.Pool.Exec(vr.ctx, `SELECT pg_notify('openvisit_visit', $1)`, string(v)); err != nil {
			t.Fatal(err)
		}
	}
	stream := vr.pa.events("/api/v1/visits/" + string(v) + "/events")
	if _, ok := stream.next(); !ok {
		t.Fatal("no first snapshot")
	}
	if n := views(); n != 1 {
		t.Fatalf("%d entries for the stream's first snapshot, want 1 naming the patient", n)
	}
	// Snapshots of the same patient soon after write nothing more.
	for range 3 {
		notify()
		if _, ok := stream.next(); !ok {
			t.Fatal("stream ended")
		}
	}
	if n := views(); n != 1 {
		t.Errorf("%d entries after four snapshots of one patient, want 1 (no entry per snapshot)", n)
	}
	// A snapshot long after the last entry names the patient again.
	for range 2 {
		vr.s.Clock.Advance(8 * time.Minute)
		if r := vr.pa.do("POST", "/api/v1/auth/keepalive", struct{}{}); r.Status != 200 {
			t.Fatalf("keepalive: %d %s", r.Status, r.Body)
		}
	}
	notify()
	if _, ok := stream.next(); !ok {
		t.Fatal("stream ended")
	}
	if n := views(); n != 2 {
		t.Errorf("%d entries after a snapshot 16 minutes on, want 2", n)
	}
}
