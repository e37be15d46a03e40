package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/fhir"
	"github.com/openvisit/openvisit/internal/smart"
	"github.com/openvisit/openvisit/internal/store"
)

// ehr is an EHR's machine client in a test: its key, its registration,
// and the FHIR codec it checks every answer with.
type ehr struct {
	s     *server
	key   *ecdsa.PrivateKey
	id    string
	codec *fhir.Codec
	http  *http.Client
}

// registerEHR registers an EHR client with scopes as an admin would.
func (s *server) registerEHR(t *testing.T, scopes string) *ehr {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.Public(), KeyID: "ehr-1", Use: "sig"}}})
	c, err := smart.CreateClient(context.Background(), s.env(), smart.Registration{Name: "Clinic EHR", Keys: jwks, Scopes: scopes},
		audit.Event{ActorID: "operator", ActorRole: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := fhir.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	return &ehr{s: s, key: k, id: c.ID, codec: codec, http: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
}

// token trades a fresh signed assertion for an access token.
func (e *ehr) token(t *testing.T, scope string) (int, string) {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: jose.JSONWebKey{Key: e.key, KeyID: "ehr-1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: e.id, Subject: e.id, Audience: jwt.Audience{e.s.URL + "/oauth/token"},
		ID: uuid.NewString(), Expiry: jwt.NewNumericDate(e.s.Clock.Now().Add(4 * time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	resp, err := e.http.Post(e.s.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	return resp.StatusCode, tok.AccessToken
}

// fhirResponse is a FHIR answer, read back through the codec (so every
// resource the API sends is checked against the library's validation).
type fhirResponse struct {
	Status int
	JSON   map[string]any
	Body   []byte
}

func (e *ehr) do(t *testing.T, method, path, token, contentType, body string) fhirResponse {
	t.Helper()
	req, err := http.NewRequest(method, e.s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, b)
	}
	if _, err := e.codec.Decode(b); err != nil {
		t.Fatalf("%s %s answered a resource the library refuses: %v\n%s", method, path, err, b)
	}
	r := fhirResponse{Status: resp.StatusCode, Body: b}
	_ = json.Unmarshal(b, &r.JSON)
	return r
}

func appointmentJSON(patient, provider string, start time.Time) string {
	b, _ := json.Marshal(map[string]any{
		"resourceType": "Appointment", "status": "booked",
		"start": start.UTC().Format(time.RFC3339), "end": start.Add(30 * time.Minute).UTC().Format(time.RFC3339),
		"participant": []map[string]any{
			{"actor": map[string]string{"reference": "Patient/" + patient}, "status": "accepted"},
			{"actor": map[string]string{"reference": "Practitioner/" + provider}, "status": "accepted"},
		},
	})
	return string(b)
}

// TestFHIRAppointmentCreatesVisit: an EHR's client finds the patient by
// medical record number and creates an Appointment; the visit is on the
// provider's schedule, the patient's invite in the answer works as a link
// the provider page made would, and after the visit the Encounter says it
// finished, with the patient as subject and the provider as participant.
func TestFHIRAppointmentCreatesVisit(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "p@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	const dob, mrn = "1975-06-15", "urn:oid:2.16.840.1.113883.19.5|MRN-1001"
	r := pc.do("POST", "/api/v1/patients", map[string]string{"name": "Pat Fhir", "date_of_birth": dob, "mrn": mrn})
	if r.Status != 201 {
		t.Fatalf("create patient: %d %s", r.Status, r.Body)
	}
	var p store.Patient
	r.decode(t, &p)

	e := s.registerEHR(t, "system/Patient.read system/Appointment.* system/Encounter.read")
	status, tok := e.token(t, "system/Patient.read system/Appointment.* system/Encounter.read")
	if status != 200 || tok == "" {
		t.Fatalf("token endpoint: %d", status)
	}
	found := e.do(t, "GET", "/fhir/R4/Patient?identifier="+url.QueryEscape(mrn), tok, "", "")
	if found.Status != 200 || found.JSON["total"] != 1.0 || !strings.Contains(string(found.Body), `/Patient/`+p.ID+`"`) {
		t.Fatalf("Patient?identifier: %d %s", found.Status, found.Body)
	}

	start := s.Clock.Now().Add(10 * time.Minute).Truncate(time.Minute)
	created := e.do(t, "POST", "/fhir/R4/Appointment", tok, "application/fhir+json", appointmentJSON(p.ID, string(prov.ID), start))
	if created.Status != 201 || created.JSON["status"] != "booked" {
		t.Fatalf("create Appointment: %d %s", created.Status, created.Body)
	}
	visit, _ := created.JSON["id"].(string)
	link := inviteLink(t, created.JSON)

	// The visit is on the provider's schedule.
	var sched struct{ Visits []store.ScheduledVisit }
	pc.do("GET", "/api/v1/visits", nil).decode(t, &sched)
	if len(sched.Visits) != 1 || string(sched.Visits[0].ID) != visit || sched.Visits[0].PatientID != p.ID {
		t.Fatalf("the provider's schedule: %+v", sched.Visits)
	}
	// The patient redeems the invite as from the link's page.
	patient := s.newClient(t)
	if r := patient.redeem(createdInvite{InviteURL: link}.secret(t), dob); r.Status != 200 {
		t.Fatalf("redeem the EHR's invite: %d %s", r.Status, r.Body)
	}
	var st stateEvent
	pc.do("GET", "/api/v1/visits/"+visit+"/state", nil).decode(t, &st)
	if len(st.Participants) != 1 {
		t.Fatalf("waiting room: %+v", st)
	}
	for _, step := range []string{"/participants/" + string(st.Participants[0].ID) + "/admit", "/join", "/end"} {
		if r := pc.do("POST", "/api/v1/visits/"+visit+step, struct{}{}); r.Status != 200 {
			t.Fatalf("%s: %d %s", step, r.Status, r.Body)
		}
	}

	enc := e.do(t, "GET", "/fhir/R4/Encounter/"+visit, tok, "", "")
	if enc.Status != 200 || enc.JSON["status"] != "finished" {
		t.Fatalf("Encounter: %d %s", enc.Status, enc.Body)
	}
	body := string(enc.Body)
	for _, want := range []string{`"subject":{"reference":"Patient/` + p.ID + `"}`, `"reference":"Practitioner/` + string(prov.ID) + `"`,
		`"code":"PPRF"`, `"valueBoolean":false`, `"reference":"Appointment/` + visit + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("Encounter lacks %s:\n%s", want, body)
		}
	}
	if a := e.do(t, "GET", "/fhir/R4/Appointment/"+visit, tok, "", ""); a.JSON["status"] != "fulfilled" || strings.Contains(string(a.Body), "invite") {
		t.Errorf("Appointment after the visit: %s", a.Body)
	}
	day := start.UTC().Format("2006-01-02")
	list := e.do(t, "GET", "/fhir/R4/Appointment?patient=Patient/"+p.ID+"&date=ge"+day+"&date=le"+day, tok, "", "")
	if list.Status != 200 || list.JSON["total"] != 1.0 {
		t.Errorf("Appointment search: %d %s", list.Status, list.Body)
	}
	if n := s.auditCount(t, fhir.ActionAppointmentCreate, "success", ""); n != 1 {
		t.Errorf("%d audit entries of the create, want 1", n)
	}
	var role string
	_ = s.Pool.QueryRow(context.Background(), `SELECT actor_role FROM audit_events WHERE action = $1 AND actor_id = $2`,
		fhir.ActionEncounterRead, e.id).Scan(&role)
	if role != smart.ActorRole {
		t.Errorf("the Encounter read is audited with actor role %q, want the client", role)
	}
}

func inviteLink(t *testing.T, appt map[string]any) string {
	t.Helper()
	exts, _ := appt["extension"].([]any)
	for _, x := range exts {
		m, _ := x.(map[string]any)
		if m["url"] == fhir.ExtInviteURL {
			s, _ := m["valueUrl"].(string)
			return s
		}
	}
	t.Fatalf("the created Appointment carries no invite link: %v", appt)
	return ""
}

// TestFHIRCancelAndRefusals: an Appointment is cancelled by PATCH or PUT
// of its status; bad input answers an OperationOutcome; outsiders are
// refused — no token, a cookie, a SCIM token, a token without the scope,
// and a revoked client's token from its next request on.
func TestFHIRCancelAndRefusals(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "p@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	var p store.Patient
	pc.do("POST", "/api/v1/patients", map[string]string{"name": "Pat Cancel", "date_of_birth": "1980-01-01"}).decode(t, &p)
	e := s.registerEHR(t, "system/Appointment.* system/Patient.read")
	_, tok := e.token(t, "system/Appointment.*")
	mk := func(at time.Time) string {
		r := e.do(t, "POST", "/fhir/R4/Appointment", tok, "application/fhir+json", appointmentJSON(p.ID, string(prov.ID), at))
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		return r.JSON["id"].(string)
	}
	a1, a2 := mk(s.Clock.Now().Add(2*time.Hour)), mk(s.Clock.Now().Add(4*time.Hour))
	if r := e.do(t, "PATCH", "/fhir/R4/Appointment/"+a1, tok, "application/json-patch+json",
		`[{"op":"replace","path":"/status","value":"cancelled"}]`); r.Status != 200 || r.JSON["status"] != "cancelled" {
		t.Errorf("PATCH cancel: %d %s", r.Status, r.Body)
	}
	put := strings.Replace(appointmentJSON(p.ID, string(prov.ID), s.Clock.Now().Add(4*time.Hour)), `"status":"booked"`,
		`"id":"`+a2+`","status":"cancelled"`, 1)
	if r := e.do(t, "PUT", "/fhir/R4/Appointment/"+a2, tok, "application/fhir+json", put); r.Status != 200 || r.JSON["status"] != "cancelled" {
		t.Errorf("PUT cancel: %d %s", r.Status, r.Body)
	}
	for name, tc := range map[string]struct {
		method, path, ct, body string
		want                   int
	}{
		"bad resource":      {"POST", "/fhir/R4/Appointment", "application/fhir+json", `{"resourceType":"Appointment","status":"nope"}`, 400},
		"wrong type":        {"POST", "/fhir/R4/Appointment", "application/fhir+json", `{"resourceType":"Patient"}`, 400},
		"not booked":        {"POST", "/fhir/R4/Appointment", "application/fhir+json", strings.Replace(appointmentJSON(p.ID, string(prov.ID), s.Clock.Now().Add(time.Hour)), "booked", "proposed", 1), 400},
		"not a provider":    {"POST", "/fhir/R4/Appointment", "application/fhir+json", appointmentJSON(p.ID, uuid.NewString(), s.Clock.Now().Add(time.Hour)), 400},
		"bad media type":    {"POST", "/fhir/R4/Appointment", "text/plain", "hello", 400},
		"too large":         {"POST", "/fhir/R4/Appointment", "application/fhir+json", strings.Repeat(" ", fhir.MaxBody+1), 413},
		"other patch":       {"PATCH", "/fhir/R4/Appointment/" + a1, "application/json-patch+json", `[{"op":"replace","path":"/start","value":"x"}]`, 400},
		"unknown id":        {"GET", "/fhir/R4/Appointment/" + uuid.NewString(), "", "", 404},
		"unsupported param": {"GET", "/fhir/R4/Appointment?patient=" + p.ID + "&status=booked", "", "", 400},
		"bad date":          {"GET", "/fhir/R4/Appointment?patient=" + p.ID + "&date=soon", "", "", 400},
		"scope not granted": {"GET", "/fhir/R4/Patient/" + p.ID, "", "", 403},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, tok, tc.ct, tc.body)
			if r.Status != tc.want || r.JSON["resourceType"] != "OperationOutcome" {
				t.Errorf("%d %s, want %d OperationOutcome", r.Status, r.Body, tc.want)
			}
		})
	}
	_, scimTok := s.scimToken(t, "Entra")
	for name, token := range map[string]string{"no token": "", "SCIM token": scimTok, "forged": "ovat_forged"} {
		if r := e.do(t, "GET", "/fhir/R4/Appointment/"+a1, token, "", ""); r.Status != 401 {
			t.Errorf("%s: %d, want 401", name, r.Status)
		}
	}
	if r := s.request(t, "GET", "/fhir/R4/Appointment/"+a1, nil, "", nil, false); r.Status != 401 {
		t.Errorf("a browser without a token: %d, want 401", r.Status)
	}
	if _, err := smart.RevokeClient(context.Background(), s.env(), e.id, audit.Event{ActorID: "operator", ActorRole: "operator"}); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, "GET", "/fhir/R4/Appointment/"+a1, tok, "", ""); r.Status != 401 {
		t.Errorf("a revoked client's token: %d, want 401", r.Status)
	}
	if status, _ := e.token(t, "system/Appointment.*"); status != 401 {
		t.Errorf("a revoked client at the token endpoint: %d, want 401", status)
	}
}

// TestSMARTDiscovery: an EHR that knows only the FHIR base finds the token
// endpoint and what it takes at .well-known/smart-configuration, and a
// token request shaped by that document (its endpoint, grant, an advertised
// algorithm and scope) succeeds. No authorization endpoint is advertised:
// only client credentials exist here.
func TestSMARTDiscovery(t *testing.T) {
	s := startServer(t)
	e := s.registerEHR(t, "system/Appointment.read")
	resp, err := e.http.Get(s.URL + "/fhir/R4/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery: %d, %v", resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	has := func(key, v string) bool {
		l, _ := doc[key].([]any)
		return slices.Contains(l, any(v))
	}
	if doc["token_endpoint"] != s.URL+"/oauth/token" || !has("grant_types_supported", "client_credentials") ||
		!has("token_endpoint_auth_methods_supported", "private_key_jwt") ||
		!has("token_endpoint_auth_signing_alg_values_supported", "ES384") ||
		!has("scopes_supported", "system/Appointment.read") {
		t.Fatalf("discovery document: %v", doc)
	}
	if _, ok := doc["authorization_endpoint"]; ok {
		t.Fatal("an authorization endpoint is advertised, but none exists")
	}
	if code, tok := e.token(t, "system/Appointment.read"); code != 200 || tok == "" {
		t.Fatalf("token as discovered: %d", code)
	}
}
