package csrf

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

const site = "https://visits.clinic.example"

func TestToken(t *testing.T) {
	key := make([]byte, 32)
	a, err := Token(key, []byte("session-a"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Token(key, []byte("session-b"))
	again, _ := Token(key, []byte("session-a"))
	if len(a) != 43 || a == b || a != again {
		t.Fatalf("tokens %q %q %q: want 43 chars, per session, deterministic", a, b, again)
	}
	key2 := make([]byte, 32)
	key2[0] = 1
	if c, _ := Token(key2, []byte("session-a")); c == a {
		t.Fatal("token does not depend on the key")
	}
	if _, err := Token(make([]byte, 31), []byte("s")); !errors.Is(err, ErrKey) {
		t.Fatalf("short key: %v", err)
	}
}

func TestCheck(t *testing.T) {
	const tok = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE"
	tests := []struct {
		name     string
		method   string
		headers  map[string][]string
		allowed  string
		expected string
		want     error
	}{
		{"GET allowed without anything", http.MethodGet, nil, site, tok, nil},
		{"HEAD allowed", http.MethodHead, map[string][]string{"Origin": {"https://evil.example"}}, site, tok, nil},
		{"same-origin POST", http.MethodPost, map[string][]string{"Origin": {site}, Header: {tok}}, site, tok, nil},
		{"origin case-insensitive, allowed with slash", http.MethodPost, map[string][]string{"Origin": {"https://Visits.Clinic.Example"}, Header: {tok}}, site + "/", tok, nil},
		{"no Origin but Sec-Fetch-Site same-origin", http.MethodPut, map[string][]string{"Sec-Fetch-Site": {"same-origin"}, Header: {tok}}, site, tok, nil},
		{"Origin and Sec-Fetch-Site agree", http.MethodDelete, map[string][]string{"Origin": {site}, "Sec-Fetch-Site": {"same-origin"}, Header: {tok}}, site, tok, nil},
		{"cross-origin", http.MethodPost, map[string][]string{"Origin": {"https://evil.example"}, Header: {tok}}, site, tok, ErrCrossOrigin},
		{"sibling subdomain", http.MethodPost, map[string][]string{"Origin": {"https://other.clinic.example"}, Header: {tok}}, site, tok, ErrCrossOrigin},
		{"http downgrade", http.MethodPost, map[string][]string{"Origin": {"http://visits.clinic.example"}, Header: {tok}}, site, tok, ErrCrossOrigin},
		{"other port", http.MethodPost, map[string][]string{"Origin": {site + ":8443"}, Header: {tok}}, site, tok, ErrCrossOrigin},
		{"null origin", http.MethodPost, map[string][]string{"Origin": {"null"}, Header: {tok}}, site, tok, ErrCrossOrigin},
		{"two origins", http.MethodPost, map[string][]string{"Origin": {site, "https://evil.example"}, Header: {tok}}, site, tok, ErrCrossOrigin},
		{"same-site fetch", http.MethodPost, map[string][]string{"Origin": {site}, "Sec-Fetch-Site": {"same-site"}, Header: {tok}}, site, tok, ErrCrossOrigin},
		{"cross-site fetch without Origin", http.MethodPost, map[string][]string{"Sec-Fetch-Site": {"cross-site"}, Header: {tok}}, site, tok, ErrCrossOrigin},
		{"no origin signal at all", http.MethodPost, map[string][]string{Header: {tok}}, site, tok, ErrNoOrigin},
		{"empty allowed origin", http.MethodPost, map[string][]string{"Origin": {site}, Header: {tok}}, "", tok, ErrCrossOrigin},
		{"missing token", http.MethodPost, map[string][]string{"Origin": {site}}, site, tok, ErrMissingToken},
		{"empty token", http.MethodPatch, map[string][]string{"Origin": {site}, Header: {""}}, site, tok, ErrMissingToken},
		{"wrong token", http.MethodPost, map[string][]string{"Origin": {site}, Header: {tok[:42] + "X"}}, site, tok, ErrBadToken},
		{"token prefix", http.MethodPost, map[string][]string{"Origin": {site}, Header: {tok[:10]}}, site, tok, ErrBadToken},
		{"two tokens", http.MethodPost, map[string][]string{"Origin": {site}, Header: {tok, tok}}, site, tok, ErrBadToken},
		{"no expected token", http.MethodPost, map[string][]string{"Origin": {site}, Header: {"x"}}, site, "", ErrBadToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, site+"/api/v1/visits", nil)
			for k, vs := range tc.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := Check(r, tc.allowed, tc.expected); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
				t.Fatalf("Check = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckOriginOnWebSocketGET(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, site+"/ws", nil)
	r.Header.Set("Origin", "https://evil.example")
	if err := CheckOrigin(r, site); !errors.Is(err, ErrCrossOrigin) {
		t.Fatalf("cross-origin upgrade: %v", err)
	}
	r.Header.Set("Origin", site)
	if err := CheckOrigin(r, site); err != nil {
		t.Fatalf("same-origin upgrade: %v", err)
	}
}
