package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/signaling"
)

// poisonedBody is a JSON body for a route decoding into proto: every
// string member holds a NUL (which PostgreSQL text cannot store), other
// members a plausible value; a type without strings gets a "note" member
// holding one. It names only members proto has, so that refusing it can
// only be about the NUL.
func poisonedBody(proto any) json.RawMessage {
	m := map[string]any{}
	hasString := false
	if proto != nil {
		v := reflect.ValueOf(proto).Elem()
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			switch t := f.Type; {
			case t.Kind() == reflect.String:
				m[name], hasString = "probe\x00probe", true
			case t.Kind() == reflect.Bool, t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool:
				m[name] = true
			case t.Kind() == reflect.Int:
				m[name] = 30
			}
		}
	}
	if !hasString {
		m["note"] = "probe\x00probe"
	}
	b, _ := json.Marshal(m) // encodes the NUL as \u0000
	return b
}

// principalFor picks a principal the route's rule admits (from the
// matrix fixture), so that the request reaches the handler.
func principalFor(rule access.Rule) string {
	switch {
	case rule.Permits(access.Anonymous):
		return anon
	case rule.Permits(access.Admin) && ((rule.VisitParam == "" && rule.PatientParam == "") || rule.AdminAnyVisit):
		return admin
	case rule.Permits(access.Provider):
		return provA // the fixture visit's provider, creator of its patient record
	default:
		return patient
	}
}

// Bad bytes get a 400, never a 500: every state-changing route of the
// policy table (sign-in included; demo mode registers them all) refuses a
// body holding \u0000 in a member it reads, and every route refuses a NUL
// in its query, as a caller the route admits. The refused sign-in is a
// failed auth.login in the audit trail.
func TestNulInJSONRefused(t *testing.T) {
	s := startServerWith(t, func(c *config.Config) { c.Demo = true })
	p := people{a: s.enrol(t, "a@clinic.test", "provider"), b: s.enrol(t, "b@clinic.test", "provider"), admin: s.enrol(t, "admin@clinic.test", "admin")}
	csrfFor := s.App.Signaling().CSRFToken
	policy := s.App.Signaling().Policy()
	bodies := signaling.RequestBodies()

	var registered []string
	for _, r := range s.App.Handler().(*gin.Engine).Routes() {
		registered = append(registered, r.Method+" "+r.Path)
	}
	for route := range policy {
		if !slices.Contains(registered, route) {
			t.Errorf("policy route %s is not registered: the walk would miss it", route)
		}
	}
	for route := range bodies {
		if _, ok := policy[route]; !ok {
			t.Errorf("signaling.RequestBodies names %s, which the policy table does not have", route)
		}
	}
	slices.Sort(registered)
	_, scimToken := s.scimToken(t, "input-test")
	ehr := s.registerEHR(t, "system/Patient.read system/Appointment.* system/Encounter.read")

	for _, route := range registered {
		method, pattern, _ := strings.Cut(route, " ")
		rule := policy[route]
		who := principalFor(rule)
		t.Run(route, func(t *testing.T) {
			f := s.newFixture(t, p)
			path := strings.NewReplacer(":visit_id", string(f.visit), ":user_id", string(f.target),
				":alert_id", f.alert, ":grant_id", f.grant, ":patient_id", f.patientRecord,
				":participant_id", string(f.participant), ":incident_id", f.incident,
				":recording_id", f.recording, ":seq", "0").Replace(pattern)
			var body any
			wantCode := "bad_parameter"
			if method == http.MethodGet {
				path += "?probe=a%00b"
			} else {
				body, wantCode = poisonedBody(bodies[route]), "bad_json"
			}
			if strings.HasPrefix(pattern, "/fhir/") || pattern == "/oauth/token" {
				nulToFHIR(t, ehr, method, path)
				return
			}
			if rule.Bearer { // SCIM: an identity provider's token; SCIM's error format
				r := s.scimDo(t, method, path, scimToken, body, "")
				if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "urn:ietf:params:scim:api:messages:2.0:Error") {
					t.Errorf("%s with a NUL = %d %s, want a 400 SCIM error", route, r.Status, r.Body)
				}
				return
			}
			r := s.request(t, method, path, body, f.sessions[who], csrfFor, false)
			if r.Status != http.StatusBadRequest || r.code() != wantCode {
				t.Errorf("%s as %s with a NUL = %d %s, want 400 %s", route, who, r.Status, r.Body, wantCode)
			}
		})
	}

	// The password sign-in and the passkey sign-in.
	if n := s.auditCount(t, "auth.login", "failure", "bad_json"); n != 2 {
		t.Errorf("%d failed auth.login audit entries for the sign-ins with a NUL, want 2", n)
	}
	if n := s.auditCount(t, "request.refused", "failure", "bad_json"); n == 0 {
		t.Error("no request.refused audit entry for the refused bodies")
	}
}

// nulToFHIR: an EHR client's request with a NUL in its query, its FHIR
// body or its token form gets a 400 in the FHIR (OperationOutcome) or
// OAuth error format, never a 500.
func nulToFHIR(t *testing.T, e *ehr, method, path string) {
	t.Helper()
	if path == "/oauth/token" {
		resp, err := e.http.Post(e.s.URL+path, "application/x-www-form-urlencoded",
			strings.NewReader("grant_type=client_credentials&client_assertion=a%00b"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"error"`) {
			t.Errorf("POST %s with a NUL = %d %s, want a 400 OAuth error", path, resp.StatusCode, b)
		}
		return
	}
	_, token := e.token(t, "system/Patient.read system/Appointment.* system/Encounter.read")
	body := ""
	if method == http.MethodGet {
		path += "?probe=a%00b"
	} else {
		body = `{"resourceType":"Appointment","status":"cancelled\u0000"}`
	}
	r := e.do(t, method, path, token, "application/fhir+json", body)
	if r.Status != http.StatusBadRequest || r.JSON["resourceType"] != "OperationOutcome" {
		t.Errorf("%s %s with a NUL = %d %s, want a 400 OperationOutcome", method, path, r.Status, r.Body)
	}
}
