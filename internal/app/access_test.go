package app_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	sfuclient "github.com/openvisit/openvisit/sfu/client"
	"github.com/openvisit/openvisit/signaling"
)

// The principals of the authorization matrix.
const (
	anon         = "anonymous"
	patient      = "patient-invite"
	otherPatient = "patient-of-another-visit"
	provA        = "provider-of-visit"
	provB        = "other-provider"
	admin        = "admin"
	// The care team of the visit (issue 17): a caregiver and an
	// interpreter admitted by their own invites, and a guest provider.
	// Their outsiders are otherPatient and provB.
	caregiver   = "caregiver-of-visit"
	interpreter = "interpreter-of-visit"
	guest       = "guest-provider-of-visit"
)

var principals = []string{anon, patient, otherPatient, provA, provB, admin, caregiver, interpreter, guest}

// expect is the hand-written expectation of each route for each principal.
// It is deliberately not derived from the policy table: it states what a
// security officer would sign off, and the test compares the two.
type expect map[string]int

func all(code int) expect {
	e := expect{}
	for _, p := range principals {
		e[p] = code
	}
	return e
}

func with(base expect, over expect) expect {
	e := expect{}
	for k, v := range base {
		e[k] = v
	}
	for k, v := range over {
		e[k] = v
	}
	return e
}

func empty(*fixture) any { return struct{}{} }

var (
	// visitProv: routes the visit's provider runs.
	visitProv = expect{anon: 401, patient: 403, otherPatient: 403, provA: 200, provB: 404, admin: 403}
	// inVisit: routes for the visit's provider and its patient.
	inVisit   = expect{anon: 401, patient: 200, otherPatient: 404, provA: 200, provB: 404, admin: 403}
	signedIn  = expect{anon: 401, patient: 200, otherPatient: 200, provA: 200, provB: 200, admin: 200}
	adminOnly = expect{anon: 401, patient: 403, otherPatient: 403, provA: 403, provB: 403, admin: 200}
	provOnly  = expect{anon: 401, patient: 403, otherPatient: 403, provA: 200, provB: 200, admin: 403}
)

// matrixCase builds the request body for a route (fresh per request).
type matrixCase struct {
	want expect
	body func(f *fixture) any
	// query is appended to the path.
	query func(f *fixture) string
	// stream: the route answers with an endless event stream; only the
	// status of its headers is checked.
	stream bool
}

// matrix merges each area's expectations, then states the care team's:
// a caregiver and an interpreter as the patient (another invitee bound to
// the visit), a guest provider as the visit's provider on its routes and as
// another provider elsewhere — except where careTeamMatrix says otherwise.
func matrix() map[string]matrixCase {
	out := map[string]matrixCase{}
	for _, part := range []map[string]matrixCase{coreMatrix(), recordingMatrix(), outboxMatrix(), accountMatrix(), scimMatrix(), webhookMatrix(), careTeamMatrix(), fhirMatrix()} {
		for k, v := range part {
			out[k] = v
		}
	}
	for route, tc := range out {
		e := expect{caregiver: tc.want[patient], interpreter: tc.want[patient], guest: tc.want[provB]}
		if strings.Contains(route, ":visit_id") || strings.Contains(route, ":recording_id") {
			e[guest] = tc.want[provA]
		}
		for k, v := range careTeamOverrides[route] {
			e[k] = v
		}
		tc.want = with(e, tc.want)
		out[route] = tc
	}
	return out
}

// webhookMatrix: visit event subscriptions are admins' alone.
func webhookMatrix() map[string]matrixCase {
	return map[string]matrixCase{
		"GET /api/v1/admin/webhooks": {want: adminOnly},
		"POST /api/v1/admin/webhooks": {want: with(adminOnly, expect{admin: 201}), body: func(*fixture) any {
			return map[string]any{"url": "https://ehr.clinic.test/openvisit", "kinds": []string{"visit.ended"}}
		}},
		"POST /api/v1/admin/webhooks/:webhook_id/disable": {want: adminOnly, body: empty},
		"GET /api/v1/admin/webhooks/deliveries":           {want: adminOnly},
	}
}

// careTeamOverrides: where a care-team principal differs from the one it
// stands beside. The interpreter does not see the visit's record (it names
// the patient); a guest provider reaches the visit and its recordings, not
// the patient records of its provider (those rest on the provider's own
// relation to them); it needs no emergency access to its own visit (409).
var careTeamOverrides = map[string]expect{
	"GET /api/v1/visits/:visit_id": {interpreter: 404},
}

// careTeamMatrix: the care team's own routes.
func careTeamMatrix() map[string]matrixCase {
	return map[string]matrixCase{
		"GET /api/v1/visits/:visit_id/invitees": {want: visitProv},
		"POST /api/v1/visits/:visit_id/invitees": {want: with(visitProv, expect{provA: 201}), body: func(*fixture) any {
			return map[string]string{"role": "caregiver", "name": "Carla Giver"}
		}},
		"POST /api/v1/visits/:visit_id/invitees/:invite_id/revoke": {want: visitProv, body: empty},
		"POST /api/v1/visits/:visit_id/guests": {want: visitProv, body: func(f *fixture) any {
			return map[string]string{"email": f.targetEmail}
		}},
		"GET /api/v1/visits/:visit_id/roster": {want: inVisit},
	}
}

func coreMatrix() map[string]matrixCase {
	return map[string]matrixCase{
		"GET /healthz": {want: all(200)},
		"GET /readyz":  {want: all(200)},
		// The OpenAPI description: public, it holds no PHI.
		"GET /api/v1/openapi.json": {want: all(200)},
		// Public by policy; the SFU refuses a request that is not a
		// WebSocket upgrade, and admits only with a join token.
		"GET /sfu/ws": {want: all(400)},
		// Wrong credentials for everyone: the route is open, sign-in fails.
		"POST /api/v1/auth/login": {want: all(401), body: func(*fixture) any {
			return map[string]string{"email": "nobody@clinic.test", "password": "not the password", "code": "000000"}
		}},
		"POST /api/v1/setup/begin":    {want: all(404), body: func(*fixture) any { return map[string]string{"token": "unknown"} }},
		"POST /api/v1/setup/complete": {want: all(404), body: func(*fixture) any { return map[string]string{"token": "unknown"} }},
		// Sign-in through an identity provider is open to all; without a
		// flow (or with an unknown issuer) it goes nowhere: the callback
		// sends the browser back to the sign-in page (followed here).
		"GET /api/v1/auth/oidc/issuers":          {want: all(200)},
		"GET /api/v1/auth/oidc/:issuer_id/start": {want: all(404)},
		"GET /api/v1/auth/oidc/callback":         {want: all(200), query: func(*fixture) string { return "?code=forged&state=forged" }},
		"POST /api/v1/auth/oidc/second-factor": {want: all(401), body: func(*fixture) any {
			return map[string]string{"code": "000000"}
		}},
		"GET /api/v1/auth/session":     {want: signedIn},
		"POST /api/v1/auth/keepalive":  {want: signedIn},
		"POST /api/v1/auth/logout":     {want: signedIn},
		"POST /api/v1/auth/logout-all": {want: with(signedIn, expect{patient: 403, otherPatient: 403})},

		"GET /api/v1/admin/users": {want: adminOnly},
		"POST /api/v1/admin/users": {want: with(adminOnly, expect{admin: 201}), body: func(*fixture) any {
			return map[string]string{"email": "new-" + uuid.NewString()[:8] + "@clinic.test", "name": "New", "role": "provider"}
		}},
		"POST /api/v1/admin/users/:user_id/role": {want: adminOnly, body: func(*fixture) any {
			return map[string]string{"role": "provider"}
		}},
		"POST /api/v1/admin/users/:user_id/disable":       {want: adminOnly, body: func(*fixture) any { return struct{}{} }},
		"POST /api/v1/admin/users/:user_id/enable":        {want: adminOnly, body: func(*fixture) any { return struct{}{} }},
		"POST /api/v1/admin/users/:user_id/unlock":        {want: adminOnly, body: func(*fixture) any { return struct{}{} }},
		"POST /api/v1/admin/users/:user_id/reset-mfa":     {want: adminOnly, body: func(*fixture) any { return struct{}{} }},
		"GET /api/v1/admin/alerts":                        {want: adminOnly},
		"POST /api/v1/admin/alerts/:alert_id/ack":         {want: adminOnly, body: func(*fixture) any { return struct{}{} }},
		"GET /api/v1/admin/break-glass":                   {want: adminOnly},
		"POST /api/v1/admin/break-glass/:grant_id/review": {want: adminOnly, body: func(*fixture) any { return struct{}{} }},

		"GET /api/v1/admin/audit":                              {want: adminOnly},
		"GET /api/v1/admin/audit/export":                       {want: adminOnly},
		"GET /api/v1/admin/patients/:patient_id/access-report": {want: adminOnly},
		"GET /api/v1/admin/patients": {want: adminOnly, query: func(*fixture) string {
			return "?name=fixture&date_of_birth=1970-01-01"
		}},
		"GET /api/v1/admin/incidents": {want: adminOnly},
		"POST /api/v1/admin/incidents": {want: with(adminOnly, expect{admin: 201}), body: func(*fixture) any {
			return map[string]string{"title": "Lost laptop", "discovered_at": time.Now().Add(-time.Hour).Format(time.RFC3339)}
		}},
		"POST /api/v1/admin/incidents/:incident_id/status": {want: adminOnly, body: func(*fixture) any {
			return map[string]string{"status": "notified"}
		}},
		"GET /api/v1/admin/incidents/:incident_id/scope": {want: adminOnly, query: func(f *fixture) string {
			return "?actor_id=someone&from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z"
		}},

		"GET /api/v1/visits":  {want: provOnly},
		"POST /api/v1/visits": {want: with(provOnly, expect{provA: 201, provB: 201}), body: func(*fixture) any { return struct{}{} }},
		// Another visit's objects answer 404, as if they did not exist.
		"GET /api/v1/visits/:visit_id": {want: expect{anon: 401, patient: 200, otherPatient: 404, provA: 200, provB: 404, admin: 200}},
		"POST /api/v1/visits/:visit_id/join": {want: expect{anon: 401, patient: 200, otherPatient: 404, provA: 200, provB: 404, admin: 403},
			body: func(*fixture) any { return struct{}{} }},
		// Scheduling and the waiting room. The fixture visit is unscheduled
		// (so reschedule and no-show conflict) with an admitted patient.
		"POST /api/v1/visits/:visit_id/reschedule": {want: with(visitProv, expect{provA: 409}), body: func(f *fixture) any {
			return map[string]any{"start": time.Now().Add(48 * time.Hour).Format(time.RFC3339), "duration_minutes": 30}
		}},
		"POST /api/v1/visits/:visit_id/cancel":        {want: visitProv, body: empty},
		"POST /api/v1/visits/:visit_id/no-show":       {want: with(visitProv, expect{provA: 409}), body: empty},
		"POST /api/v1/visits/:visit_id/end":           {want: visitProv, body: empty},
		"POST /api/v1/visits/:visit_id/invite":        {want: with(visitProv, expect{provA: 201}), body: empty},
		"POST /api/v1/visits/:visit_id/invite/revoke": {want: visitProv, body: empty},
		// The fixture patient is already admitted: admitting or turning
		// away conflicts; removing works.
		"POST /api/v1/visits/:visit_id/participants/:participant_id/admit":     {want: with(visitProv, expect{provA: 409}), body: empty},
		"POST /api/v1/visits/:visit_id/participants/:participant_id/turn-away": {want: with(visitProv, expect{provA: 409}), body: empty},
		"POST /api/v1/visits/:visit_id/participants/:participant_id/remove":    {want: visitProv, body: empty},
		"GET /api/v1/visits/:visit_id/state":                                   {want: inVisit},
		"GET /api/v1/visits/:visit_id/events":                                  {want: inVisit, stream: true},
		// The visit's chat: its provider and its (admitted) patient send
		// and read; the other visit's patient and provider get 404.
		"POST /api/v1/visits/:visit_id/chat": {want: with(inVisit, expect{patient: 201, provA: 201}), body: func(*fixture) any {
			return map[string]string{"text": "Matrix hello"}
		}},
		"GET /api/v1/visits/:visit_id/chat": {want: inVisit},
		// The device check's network check: the visit's relay for those
		// in it; the probe download for anyone signed in.
		"GET /api/v1/visits/:visit_id/network-check": {want: inVisit},
		"GET /api/v1/network-check/probe":            {want: signedIn, query: func(*fixture) string { return "?bytes=1000" }},
		"POST /api/v1/visits/:visit_id/leave":        {want: inVisit, body: empty},
		"POST /api/v1/invites/redeem": {want: all(404), body: func(*fixture) any {
			return map[string]string{"invite": "not-an-invite", "date_of_birth": "1990-01-01"}
		}},
		// Open to anyone holding a link; answers only used or not.
		"POST /api/v1/invites/check": {want: all(200), body: func(*fixture) any { return map[string]string{"invite": "not-an-invite"} }},
		"POST /api/v1/patients": {want: with(provOnly, expect{provA: 201, provB: 201}), body: func(*fixture) any {
			return map[string]string{"name": "New Patient", "date_of_birth": "1990-01-01", "state": "NY"}
		}},
		"GET /api/v1/patients": {want: provOnly},
		// Provider A created the fixture patient; B has no relation to them.
		// Invitees of any role: 404, as if the record did not exist.
		"GET /api/v1/patients/:patient_id": {want: expect{anon: 401, patient: 404, otherPatient: 404, provA: 200, provB: 404, admin: 200}},

		// Any provider may ask for emergency access; for their own visit it
		// is not needed (409).
		"POST /api/v1/visits/:visit_id/break-glass": {
			want: expect{anon: 401, patient: 403, otherPatient: 403, provA: 409, provB: 201, admin: 403},
			body: func(*fixture) any {
				return map[string]string{"reason": "Covering for the on-call provider during an urgent consult"}
			},
		},
	}
}

// fixture is what one matrix cell runs against: a fresh visit of provider
// A with an admitted patient, and fresh objects for the admin routes, so no
// cell's side effects reach another.
type fixture struct {
	visit, otherVisit ids.VisitID
	target            ids.UserID // a user the admin routes act on
	targetEmail       string     // its email (a guest provider to add)
	invite            string     // a caregiver's invite of visit
	alert, grant      string
	patientRecord     string // a patient created by provider A
	incident          string
	webhook           string
	recording         string            // a recording of visit (matrix_recordings_test.go)
	participant       ids.ParticipantID // the visit's admitted patient
	outboxMessage     string            // development outbox mail sent by provider A (matrix_outbox_test.go)
	passkey           string            // a passkey of provider A (matrix_account_test.go)
	sessions          map[string]string // principal → session cookie value
}

type people struct {
	a, b, admin, guest staff
}

func (s *server) insertSession(t *testing.T, sess store.NewSession) string {
	t.Helper()
	plain, hash, err := session.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	sess.IDHash, sess.Now = hash, s.Clock.Now()
	if err := store.CreateSession(context.Background(), s.Pool, sess); err != nil {
		t.Fatal(err)
	}
	return plain
}

func (s *server) patientIn(t *testing.T, v ids.VisitID) (string, ids.ParticipantID) {
	t.Helper()
	return s.inviteeIn(t, v, "patient")
}

// inviteeIn admits an invitee of role to visit v and opens their session.
func (s *server) inviteeIn(t *testing.T, v ids.VisitID, role string) (string, ids.ParticipantID) {
	t.Helper()
	pid := ids.NewParticipantID()
	if _, err := s.Pool.Exec(context.Background(), `INSERT INTO participants (id, visit_id, role, subject) VALUES ($1, $2, $3, 'invite')`,
		string(pid), string(v), role); err != nil {
		t.Fatal(err)
	}
	return s.insertSession(t, store.NewSession{Kind: store.SessionPatient, VisitID: v, ParticipantID: pid}), pid
}

func (s *server) newVisit(t *testing.T, provider ids.UserID) ids.VisitID {
	t.Helper()
	v := ids.NewVisitID()
	if err := store.CreateVisit(context.Background(), s.Pool, v, provider, "local", nil, nil); err != nil {
		t.Fatal(err)
	}
	return v
}

func (s *server) newFixture(t *testing.T, p people) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{visit: s.newVisit(t, p.a.ID), otherVisit: s.newVisit(t, p.b.ID), sessions: map[string]string{}}
	u, err := store.CreateUser(ctx, s.Pool, "target-"+uuid.NewString()[:8]+"@clinic.test", "Target", "provider")
	if err != nil {
		t.Fatal(err)
	}
	f.target, f.targetEmail = u.ID, u.Email
	a, err := store.RaiseAlert(ctx, s.Pool, "test", "info", "", "", s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.alert = a.ID
	// Held by the target user (no session), not the admin: no one reviews
	// their own grant.
	g, err := store.GrantBreakGlass(ctx, s.App.DB(), f.target, f.otherVisit, "a reason of at least twenty characters", s.Clock.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f.grant = g.ID
	f.recording = s.recordingFixture(t, f.visit)
	f.outboxMessage = s.outboxFixture(t, p.a.ID)
	f.passkey = s.passkeyFixture(t, p.a.ID)
	f.sessions[patient], f.participant = s.patientIn(t, f.visit)
	f.sessions[otherPatient], _ = s.patientIn(t, f.otherVisit)
	f.sessions[caregiver], _ = s.inviteeIn(t, f.visit, "caregiver")
	f.sessions[interpreter], _ = s.inviteeIn(t, f.visit, "interpreter")
	inv, _, err := store.CreateRoleInvite(ctx, s.App.DB(), store.NewInvite{Visit: f.visit, Role: "caregiver", Name: "Carla Giver"}, s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.invite = inv.ID
	rec, err := store.CreatePatient(ctx, s.App.DB(), store.Patient{Name: "Fixture Patient", DateOfBirth: "1970-01-01", CreatedBy: p.a.ID})
	if err != nil {
		t.Fatal(err)
	}
	f.patientRecord = rec.ID
	inc, err := store.CreateIncident(ctx, s.App.DB(), "fixture", "", s.Clock.Now(), p.admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.incident = inc.ID
	f.webhook = uuid.NewString()
	if _, err := s.App.DB().Exec(ctx, `INSERT INTO webhook_subscriptions (id, url, secret_enc, kinds)
		VALUES ($1, 'https://ehr.clinic.test/hooks', '\x00', '{visit.ended}')`, f.webhook); err != nil {
		t.Fatal(err)
	}
	if p.guest.ID != "" {
		if err := store.AddVisitStaff(ctx, s.Pool, f.visit, p.guest.ID, p.a.ID, s.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for name, u := range map[string]staff{provA: p.a, provB: p.b, admin: p.admin, guest: p.guest} {
		if u.ID == "" {
			continue // a test without a guest provider
		}
		f.sessions[name] = s.insertSession(t, store.NewSession{Kind: store.SessionStaff, UserID: u.ID})
	}
	return f
}

// request sends one matrix request as principal.
func (s *server) request(t *testing.T, method, path string, body any, cookie string, sealerCSRF func([]byte) string, stream bool) response {
	t.Helper()
	c := s.newClient(t)
	c.headersOnly = stream
	if cookie != "" {
		c.http.Jar = nil
		c.csrf = sealerCSRF(session.HashToken(cookie))
		return c.doWithCookie(method, path, body, cookie)
	}
	return c.do(method, path, body)
}

func (c *client) doWithCookie(method, path string, body any, cookie string) response {
	c.t.Helper()
	tr := c.http.Transport
	c.http.Transport = cookieTransport{tr, cookie}
	return c.do(method, path, body)
}

type cookieTransport struct {
	base   http.RoundTripper
	cookie string
}

func (ct cookieTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r.AddCookie(&http.Cookie{Name: signaling.SessionCookie, Value: ct.cookie})
	return ct.base.RoundTrip(r)
}

func TestAuthorizationMatrix(t *testing.T) {
	s := startServerWith(t, onLocalhost) // passkey routes need a host name
	p := people{a: s.enrol(t, "a@clinic.test", "provider"), b: s.enrol(t, "b@clinic.test", "provider"), admin: s.enrol(t, "admin@clinic.test", "admin"),
		guest: s.enrol(t, "guest@clinic.test", "provider")}
	// The CSRF token a page would get from its session view.
	csrfFor := s.App.Signaling().CSRFToken

	engine, ok := s.App.Handler().(*gin.Engine)
	if !ok {
		t.Fatal("the app handler is not the gin engine; the matrix cannot enumerate routes")
	}
	want := matrix()
	// The route tables (signaling/routes.go) declare each route with its
	// rule; Register adds them, so a registered route that is not in
	// them was added around them and has no rule.
	declared := map[string]signaling.Route{}
	for _, r := range s.App.Signaling().Routes() {
		declared[r.Method+" "+r.Path] = r
	}
	var routes []string
	for _, r := range engine.Routes() {
		routes = append(routes, r.Method+" "+r.Path)
	}
	sort.Strings(routes)
	for _, route := range routes {
		if _, ok := declared[route]; !ok {
			t.Errorf("route %s has no rule: it is not declared in a route table (signaling/routes.go)", route)
		}
		if _, ok := want[route]; !ok {
			t.Errorf("route %s has no expected row in TestAuthorizationMatrix", route)
		}
	}
	for route, r := range declared {
		if r.Registered && !slices.Contains(routes, route) {
			t.Errorf("route %s (%s) is declared as served but not registered: the matrix would miss it", route, r.Area)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, route := range routes {
		tc := want[route]
		method, pattern, _ := strings.Cut(route, " ")
		for _, who := range principals {
			t.Run(route+"/"+who, func(t *testing.T) {
				if strings.HasPrefix(pattern, "/api/v1/auth/") {
					// Sign-in routes share one limiter per client address
					// (a token per 6 s, burst 20) and every request here
					// comes from 127.0.0.1: let it refill, as it would
					// between that many people signing in.
					s.Clock.Advance(6 * time.Second)
				}
				f := s.newFixture(t, p)
				path := strings.NewReplacer(":visit_id", string(f.visit), ":user_id", string(f.target),
					":alert_id", f.alert, ":grant_id", f.grant, ":patient_id", f.patientRecord,
					":participant_id", string(f.participant), ":incident_id", f.incident,
					":recording_id", f.recording, ":seq", "0", ":message_id", f.outboxMessage, ":n", "0",
					":passkey_id", f.passkey, ":webhook_id", f.webhook, ":invite_id", f.invite).Replace(pattern)
				if tc.query != nil {
					path += tc.query(f)
				}
				var body any
				if tc.body != nil {
					body = tc.body(f)
				}
				r := s.request(t, method, path, body, f.sessions[who], csrfFor, tc.stream)
				if r.Status != tc.want[who] {
					t.Errorf("%s %s as %s = %d %s, want %d", method, pattern, who, r.Status, r.Body, tc.want[who])
				}
			})
		}
	}
}

// Outsiders are refused for reasons other than role, too: a state change
// from another origin or without the session's CSRF token.
func TestCSRFRequired(t *testing.T) {
	s := startServer(t)
	u := s.enrol(t, "p@clinic.test", "provider")
	c := s.newClient(t)
	c.mustLogin(u)
	token := c.csrf

	c.csrf = ""
	if r := c.do("POST", "/api/v1/visits", struct{}{}); r.Status != 403 || r.code() != "csrf" {
		t.Errorf("without CSRF token: %d %s", r.Status, r.Body)
	}
	c.csrf = "forged-token"
	if r := c.do("POST", "/api/v1/visits", struct{}{}); r.Status != 403 {
		t.Errorf("with a wrong CSRF token: %d", r.Status)
	}
	c.csrf = token
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/visits", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("X-CSRF-Token", token)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("cross-origin POST with a valid token = %d, want 403", resp.StatusCode)
	}
	if r := c.do("POST", "/api/v1/visits", struct{}{}); r.Status != 201 {
		t.Errorf("same-origin POST with the token = %d %s", r.Status, r.Body)
	}
	if n := s.auditCount(t, "access.denied", "denied", "csrf"); n != 3 {
		t.Errorf("%d denied-access audit entries for CSRF, want 3", n)
	}
}

// Mass assignment: role or IDs smuggled into a body are refused, not
// silently applied.
func TestMassAssignmentRefused(t *testing.T) {
	s := startServer(t)
	adm := s.enrol(t, "admin@clinic.test", "admin")
	c := s.newClient(t)
	c.mustLogin(adm)
	r := c.do("POST", "/api/v1/admin/users", map[string]string{"email": "x@clinic.test", "role": "provider", "id": uuid.NewString()})
	if r.Status != 400 || r.code() != "unknown_field" {
		t.Errorf("invite with an id field = %d %s, want 400 unknown_field", r.Status, r.Body)
	}
	r = c.do("POST", "/api/v1/visits/"+uuid.NewString()+"/break-glass", map[string]any{"reason": strings.Repeat("r", 30), "user_id": adm.ID})
	if r.Status != 403 { // admins may not break glass at all
		t.Errorf("break-glass as admin = %d", r.Status)
	}
	var n int
	_ = s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM users WHERE email = 'x@clinic.test'`).Scan(&n)
	if n != 0 {
		t.Error("a refused request created a user")
	}
}

func TestDisableUserEndsSessions(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "p@clinic.test", "provider")
	adm := s.enrol(t, "admin@clinic.test", "admin")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	r := pc.do("POST", "/api/v1/visits", struct{}{})
	var v store.Visit
	r.decode(t, &v)
	r = pc.do("POST", "/api/v1/visits/"+string(v.ID)+"/join", struct{}{})
	if r.Status != 200 {
		t.Fatalf("join: %d %s", r.Status, r.Body)
	}
	var g signaling.JoinGrant
	r.decode(t, &g)

	deadline := time.Now().Add(10 * time.Second)
	conn, err := sfuclient.Join(context.Background(), sfuclient.Params{
		URL: g.WSURL, Token: g.Token, Visit: g.VisitID,
		Dialer:      &websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second},
		Header:      http.Header{"Origin": {s.URL}},
		JoinTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("join over WebSocket: %v", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(deadline)
	if n := s.App.Media().Stats().Participants; n != 1 {
		t.Fatalf("SFU participants = %d, want 1", n)
	}

	ac := s.newClient(t)
	ac.mustLogin(adm)
	r = ac.do("POST", "/api/v1/admin/users/"+string(prov.ID)+"/disable", struct{}{})
	if r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}

	// The open WebSocket gets `removed` and closes with 4010 at once.
	var gotRemoved bool
	for {
		m, err := conn.Read()
		if err != nil {
			if sfuclient.CloseCodeOf(err) != 4010 {
				t.Fatalf("socket ended with %v, want close 4010", err)
			}
			break
		}
		if m.Type == "error" && m.Code == "removed" {
			gotRemoved = true
		}
	}
	if !gotRemoved {
		t.Error("no `removed` error before the close")
	}
	if n := s.App.Media().Stats().Participants; n != 0 {
		t.Errorf("SFU participants after disable = %d, want 0", n)
	}
	if r := pc.do("GET", "/api/v1/auth/session", nil); r.Status != 401 {
		t.Errorf("the disabled user's session still answers %d", r.Status)
	}
	if r := pc.login(prov); r.Status != 401 {
		t.Errorf("a disabled user signed in again: %d", r.Status)
	}
	if n := s.auditCount(t, "user.disable", "success", ""); n != 1 {
		t.Errorf("%d user.disable audit entries, want 1", n)
	}
}

func TestBreakGlassAudited(t *testing.T) {
	s := startServer(t)
	owner := s.enrol(t, "owner@clinic.test", "provider")
	covering := s.enrol(t, "covering@clinic.test", "provider")
	adm := s.enrol(t, "admin@clinic.test", "admin")
	visit := s.newVisit(t, owner.ID)
	c := s.newClient(t)
	c.mustLogin(covering)

	if r := c.do("GET", "/api/v1/visits/"+string(visit), nil); r.Status != 404 {
		t.Fatalf("another provider's visit = %d, want 404 before break-glass", r.Status)
	}
	if r := c.do("POST", "/api/v1/visits/"+string(visit)+"/break-glass", map[string]string{"reason": "urgent"}); r.Status != 400 || r.code() != "bad_reason" {
		t.Fatalf("short reason = %d %s, want 400 bad_reason", r.Status, r.Body)
	}
	if r := c.do("POST", "/api/v1/visits/"+uuid.NewString()+"/break-glass", map[string]string{"reason": strings.Repeat("urgent ", 5)}); r.Status != 404 {
		t.Fatalf("break-glass on a visit that does not exist = %d, want 404", r.Status)
	}
	reason := "Patient deteriorating; on-call covering provider needs the visit now"
	r := c.do("POST", "/api/v1/visits/"+string(visit)+"/break-glass", map[string]string{"reason": reason})
	if r.Status != 201 {
		t.Fatalf("break-glass: %d %s", r.Status, r.Body)
	}
	if r := c.do("GET", "/api/v1/visits/"+string(visit), nil); r.Status != 200 {
		t.Fatalf("visit under break-glass = %d, want 200", r.Status)
	}
	if r := c.do("POST", "/api/v1/visits/"+string(visit)+"/join", struct{}{}); r.Status != 200 {
		t.Fatalf("join under break-glass = %d %s", r.Status, r.Body)
	}
	// Flagged in the audit log: the grant, and each access it allowed.
	if n := s.auditCount(t, "break_glass.grant", "success", "break-glass"); n != 1 {
		t.Errorf("%d break_glass.grant entries, want 1", n)
	}
	if n := s.auditCount(t, "visit.view", "success", "break-glass"); n != 1 {
		t.Errorf("%d visit.view entries flagged break-glass, want 1", n)
	}
	if n := s.auditCount(t, "visit.join", "success", "break-glass"); n != 1 {
		t.Errorf("%d visit.join entries flagged break-glass, want 1", n)
	}
	var logged int
	_ = s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE reason LIKE '%deteriorating%'`).Scan(&logged)
	if logged != 0 {
		t.Error("the free-text reason (may describe a patient) was copied into the audit log")
	}

	// Raised as an alert for admins, who review the grant.
	ac := s.newClient(t)
	ac.mustLogin(adm)
	var alerts struct{ Alerts []store.Alert }
	ac.do("GET", "/api/v1/admin/alerts", nil).decode(t, &alerts)
	found := false
	for _, a := range alerts.Alerts {
		found = found || (a.Kind == "break_glass" && a.Subject == string(covering.ID))
	}
	if !found {
		t.Errorf("no break_glass alert for the covering provider in %+v", alerts.Alerts)
	}
	var grants struct{ Grants []store.BreakGlass }
	ac.do("GET", "/api/v1/admin/break-glass", nil).decode(t, &grants)
	if len(grants.Grants) != 1 || grants.Grants[0].Reason != reason {
		t.Fatalf("admin grant list = %+v", grants.Grants)
	}
	if r := ac.do("POST", "/api/v1/admin/break-glass/"+grants.Grants[0].ID+"/review", struct{}{}); r.Status != 200 {
		t.Errorf("review: %d", r.Status)
	}

	// The grant lasts one hour.
	s.Clock.Advance(61 * time.Minute)
	c.mustLoginAgain(covering)
	if r := c.do("GET", "/api/v1/visits/"+string(visit), nil); r.Status != 404 {
		t.Errorf("visit after the grant expired = %d, want 404", r.Status)
	}
}

// mustLoginAgain signs in anew (the old session may have idled out while
// the clock moved).
func (c *client) mustLoginAgain(u staff) { c.mustLogin(u) }
