package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/scim"
	"github.com/openvisit/openvisit/internal/store"
	sfuclient "github.com/openvisit/openvisit/sfu/client"
	"github.com/openvisit/openvisit/signaling"
)

// scimToken registers a SCIM client for idp as the operator would
// (openvisit scim token create) and returns its id and bearer token.
func (s *server) scimToken(t *testing.T, idp string) (string, string) {
	t.Helper()
	c, tok, err := scim.CreateToken(context.Background(), s.env(), idp, audit.Event{ActorID: "operator", ActorRole: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, tok
}

func (s *server) env() store.Env { return store.Env{DB: s.App.DB(), Clock: s.Clock.Now} }

// scimDo sends a SCIM request as an identity provider does: a bearer
// token (when not empty), application/scim+json, no Origin, no cookie
// unless one is given.
func (s *server) scimDo(t *testing.T, method, path, token string, body any, cookie string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			b, _ = json.Marshal(body)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: signaling.SessionCookie, Value: cookie})
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

// scimUserID finds a user over SCIM the way identity providers do before
// they change one: a list filtered by userName.
func (s *server) scimUserID(t *testing.T, token, email string) string {
	t.Helper()
	r := s.scimDo(t, "GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "`+email+`"`), token, nil, "")
	var list struct {
		TotalResults int
		Resources    []struct{ ID string }
	}
	r.decode(t, &list)
	if r.Status != 200 || list.TotalResults != 1 || len(list.Resources) != 1 {
		t.Fatalf("SCIM filter userName eq %q: %d %s", email, r.Status, r.Body)
	}
	return list.Resources[0].ID
}

var deactivate = map[string]any{
	"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
	"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}},
}

// A provider in a live call is deactivated in the identity provider: the
// SCIM PATCH disables them through the accounts domain, and the media
// node closes their connection (removed, 4010) within 2 s.
func TestSCIMDeactivateEndsCall(t *testing.T) {
	s := startServer(t)
	_, token := s.scimToken(t, "entra")
	conn, pc, prov := s.providerInCall(t)
	defer conn.Close()

	id := s.scimUserID(t, token, prov.Email)
	if r := s.scimDo(t, "PATCH", "/scim/v2/Users/"+id, token, deactivate, ""); r.Status != 200 {
		t.Fatalf("SCIM deactivate: %d %s", r.Status, r.Body)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		_, err := conn.Read()
		if err == nil {
			continue
		}
		if sfuclient.CloseCodeOf(err) != 4010 {
			t.Fatalf("media connection ended with %v, want close 4010 (removed) within 2 s", err)
		}
		break
	}
	if r := pc.do("GET", "/api/v1/auth/session", nil); r.Status != 401 {
		t.Errorf("the deactivated provider's session still answers %d", r.Status)
	}
	var role, reason string
	if err := s.Pool.QueryRow(context.Background(), `SELECT actor_role, reason FROM audit_events
		WHERE action = 'user.disable' AND resource_id = $1`, id).Scan(&role, &reason); err != nil {
		t.Fatalf("no user.disable audit entry: %v", err)
	}
	if role != scim.ActorRole || reason != "scim entra" {
		t.Errorf("disable audited as role %q reason %q, want %q, %q", role, reason, scim.ActorRole, "scim entra")
	}
}

// providerInCall signs a provider in, starts a visit and joins its media
// over the WebSocket (the rig of TestDisableUserEndsSessions).
func (s *server) providerInCall(t *testing.T) (*sfuclient.Conn, *client, staff) {
	t.Helper()
	prov := s.enrol(t, "p@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	var v store.Visit
	pc.do("POST", "/api/v1/visits", struct{}{}).decode(t, &v)
	r := pc.do("POST", "/api/v1/visits/"+string(v.ID)+"/join", struct{}{})
	if r.Status != 200 {
		t.Fatalf("join: %d %s", r.Status, r.Body)
	}
	var g signaling.JoinGrant
	r.decode(t, &g)
	conn, err := sfuclient.Join(context.Background(), sfuclient.Params{
		URL: g.WSURL, Token: g.Token, Visit: g.VisitID,
		Dialer:      &websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second},
		Header:      http.Header{"Origin": {s.URL}},
		JoinTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("join over WebSocket: %v", err)
	}
	if n := s.App.Media().Stats().Participants; n != 1 {
		t.Fatalf("SFU participants = %d, want 1", n)
	}
	return conn, pc, prov
}

// Outsiders are refused by SCIM: no token, a wrong one, a revoked one, a
// staff or patient session cookie without a token. Refusals answer in
// SCIM's error format and are audited.
func TestSCIMRefusesOutsiders(t *testing.T) {
	s := startServer(t)
	adm := s.enrol(t, "admin@clinic.test", "admin")
	revokedID, revoked := s.scimToken(t, "old-okta")
	if _, err := scim.RevokeToken(context.Background(), s.env(), revokedID, audit.Event{ActorID: "operator"}); err != nil {
		t.Fatal(err)
	}
	_, good := s.scimToken(t, "okta")
	ac := s.newClient(t)
	ac.mustLogin(adm)
	var adminCookie string
	for _, c := range ac.http.Jar.Cookies(mustURL(t, s.URL)) {
		if c.Name == signaling.SessionCookie {
			adminCookie = c.Value
		}
	}
	if adminCookie == "" {
		t.Fatal("no admin session cookie")
	}
	for _, tc := range []struct {
		name, token, cookie string
		want                int
	}{
		{"no token", "", "", 401},
		{"wrong token", "ovscim_" + strings.Repeat("A", 43), "", 401},
		{"not a scim token", "not-a-token", "", 401},
		{"revoked token", revoked, "", 401},
		{"admin session cookie", "", adminCookie, 401},
		{"valid token", good, "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.scimDo(t, "GET", "/scim/v2/Users", tc.token, nil, tc.cookie)
			if r.Status != tc.want {
				t.Fatalf("GET /scim/v2/Users = %d %s, want %d", r.Status, r.Body, tc.want)
			}
			if tc.want == 401 && !strings.Contains(string(r.Body), "urn:ietf:params:scim:api:messages:2.0:Error") {
				t.Errorf("refusal is not a SCIM error: %s", r.Body)
			}
			// Writes are refused the same way (no CSRF exemption opens them).
			if tc.want == 401 {
				r = s.scimDo(t, "POST", "/scim/v2/Users", tc.token, map[string]any{"userName": "x@clinic.test"}, tc.cookie)
				if r.Status != 401 {
					t.Errorf("POST /scim/v2/Users = %d, want 401", r.Status)
				}
			}
		})
	}
	if n := s.auditCount(t, "access.denied", "denied", "no valid scim token"); n < 5 {
		t.Errorf("%d audited SCIM refusals, want at least 5", n)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The Users endpoint as identity providers drive it: create, get, list by
// userName, replace, patch (Entra's "False" string too), delete as a
// deactivation; a taken userName is 409 and a malformed body 400, both in
// SCIM's format; every change is audited with the IdP's client as actor.
func TestSCIMUsers(t *testing.T) {
	s := startServer(t)
	clientID, token := s.scimToken(t, "keycloak")
	create := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": "dana@clinic.test", "externalId": "kc-42", "name": map[string]any{"givenName": "Dana", "familyName": "Ruiz"}}
	r := s.scimDo(t, "POST", "/scim/v2/Users", token, create, "")
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var u struct {
		ID, UserName, DisplayName, ExternalID string
		Active                                bool
	}
	r.decode(t, &u)
	if u.UserName != "dana@clinic.test" || u.DisplayName != "Dana Ruiz" || !u.Active || u.ExternalID != "kc-42" {
		t.Errorf("created %+v", u)
	}
	if r := s.scimDo(t, "POST", "/scim/v2/Users", token, create, ""); r.Status != 409 || !strings.Contains(string(r.Body), "uniqueness") {
		t.Errorf("duplicate userName: %d %s, want 409 uniqueness", r.Status, r.Body)
	}
	if id := s.scimUserID(t, token, "dana@clinic.test"); id != u.ID {
		t.Errorf("filter found %s, want %s", id, u.ID)
	}
	replace := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": "dana@clinic.test", "displayName": "Dana Ruiz-Ortega", "active": true}
	if r := s.scimDo(t, "PUT", "/scim/v2/Users/"+u.ID, token, replace, ""); r.Status != 200 || !strings.Contains(string(r.Body), "Ruiz-Ortega") {
		t.Errorf("replace: %d %s", r.Status, r.Body)
	}
	entra := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "Replace", "path": "active", "value": "False"}}}
	r = s.scimDo(t, "PATCH", "/scim/v2/Users/"+u.ID, token, entra, "")
	if r.Status != 200 || !strings.Contains(string(r.Body), `"active":false`) {
		t.Errorf("patch active \"False\": %d %s", r.Status, r.Body)
	}
	user, err := store.UserByID(context.Background(), s.Pool, ids.UserID(u.ID), false)
	if err != nil || user.DisabledAt == nil {
		t.Fatalf("after patch the user is not disabled: %v %+v", err, user.DisabledAt)
	}
	if r := s.scimDo(t, "DELETE", "/scim/v2/Users/"+u.ID, token, nil, ""); r.Status != 204 {
		t.Errorf("delete: %d %s", r.Status, r.Body)
	}
	if r := s.scimDo(t, "GET", "/scim/v2/Users/"+u.ID, token, nil, ""); r.Status != 200 || !strings.Contains(string(r.Body), `"active":false`) {
		t.Errorf("a deleted user is kept, deactivated: %d %s", r.Status, r.Body)
	}
	if r := s.scimDo(t, "POST", "/scim/v2/Users", token, []byte(`{"userName":"a\u0000b@clinic.test"}`), ""); r.Status != 400 ||
		!strings.Contains(string(r.Body), "urn:ietf:params:scim:api:messages:2.0:Error") {
		t.Errorf("NUL in body: %d %s, want a 400 SCIM error", r.Status, r.Body)
	}
	big := []byte(`{"userName":"` + strings.Repeat("a", scim.MaxBody) + `"}`)
	if r := s.scimDo(t, "POST", "/scim/v2/Users", token, big, ""); r.Status != 413 {
		t.Errorf("oversized body: %d, want 413", r.Status)
	}
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE actor_id = $1
		AND action IN ('user.create', 'user.update', 'user.disable')`, clientID).Scan(&n); err != nil || n != 3 {
		t.Errorf("%d SCIM changes audited with the IdP as actor (%v), want 3 (create, update, disable)", n, err)
	}
}
