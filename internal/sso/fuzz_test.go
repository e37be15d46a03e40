package sso

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
)

// FuzzClaims: the claims of a (verified) ID token are the issuer's JSON;
// reading them never panics and keeps every value within its limit.
func FuzzClaims(f *testing.F) {
	f.Add([]byte(`{"email":"a@b.c","name":"A","groups":["x","y"],"amr":["pwd","mfa"],"acr":"1","email_verified":"true"}`))
	f.Add([]byte(`{"groups":"single","amr":null,"email_verified":true}`))
	f.Add([]byte(`{"groups":[1,2],"email":{"x":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			return
		}
		c, err := claimsFrom(m, "groups")
		if err != nil {
			return
		}
		if len(c.Groups) > maxGroups || len(c.AMR) > maxAMR || len(c.Email) > maxClaimValue || len(c.Name) > maxClaimValue {
			t.Fatalf("limits not applied: %d groups, %d amr", len(c.Groups), len(c.AMR))
		}
		for _, g := range append(c.Groups, c.AMR...) {
			if len(g) > maxClaimValue {
				t.Fatalf("value over the limit: %d bytes", len(g))
			}
		}
	})
}

// FuzzBrowserState: the flow and pending cookies come back from the
// browser; anything but what we sealed is refused, without a panic.
func FuzzBrowserState(f *testing.F) {
	sealer, err := keys.NewSealer(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	s := &Service{p: Params{Sealer: sealer, Env: store.Env{Clock: func() time.Time { return time.Unix(1_700_000_000, 0) }}}}
	good, err := s.seal(flowPurpose, flow{Issuer: "clinic", State: "s", Expires: 1_700_000_600})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("not base64 !")
	f.Fuzz(func(t *testing.T, cookie string) {
		var fl flow
		// Only what was sealed under the key opens (each fuzz worker seals
		// its own copy of the seed, with its own nonce).
		if err := s.open(flowPurpose, cookie, &fl); err == nil && (fl.Issuer != "clinic" || fl.State != "s") {
			t.Fatalf("a state we did not seal was accepted: %q", cookie)
		}
		var pd pending
		if s.open(pendingPurpose, cookie, &pd) == nil {
			t.Fatalf("a flow state opened as a pending sign-in: %q", cookie)
		}
	})
}
