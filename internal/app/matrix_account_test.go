package app_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// passkeyFixture stores a passkey of user (its key material is random: the
// matrix only renames and removes it).
func (s *server) passkeyFixture(t *testing.T, user ids.UserID) string {
	t.Helper()
	cred := make([]byte, 32)
	_, _ = rand.Read(cred)
	id, err := store.AddPasskey(context.Background(), s.Pool, store.Passkey{UserID: user, CredentialID: cred,
		PublicKey: []byte{1}, Name: "Fixture key", CreatedAt: s.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	// Each matrix cell makes one: keep provider A under the per-user limit.
	t.Cleanup(func() { _, _ = s.Pool.Exec(context.Background(), `DELETE FROM webauthn_credentials WHERE id = $1`, id) })
	return id
}

// accountMatrix: a staff user's own passkeys (another's answers 404), the
// passkey sign-in (open to all, refused without a valid passkey), and the
// dormant accounts (admins).
func accountMatrix() map[string]matrixCase {
	staffOnly := expect{anon: 401, patient: 403, otherPatient: 403, provA: 200, provB: 200, admin: 200}
	owner := with(staffOnly, expect{provB: 404, admin: 404})
	credential := func(*fixture) any { return map[string]any{"name": "Laptop", "credential": map[string]any{}} }
	return map[string]matrixCase{
		"POST /api/v1/auth/passkey/begin": {want: all(200), body: func(*fixture) any { return map[string]string{"purpose": "signin"} }},
		// An answer that is no passkey's: refused for everyone.
		"POST /api/v1/auth/passkey/login":     {want: all(401), body: func(*fixture) any { return map[string]any{"credential": map[string]any{}} }},
		"GET /api/v1/account/passkeys":        {want: staffOnly},
		"POST /api/v1/account/passkeys/begin": {want: staffOnly, body: empty},
		// No ceremony and no real credential: the route is open to staff
		// and the answer does not verify.
		"POST /api/v1/account/passkeys": {want: with(staffOnly, expect{provA: 400, provB: 400, admin: 400}), body: credential},
		"POST /api/v1/account/passkeys/:passkey_id/rename": {want: owner,
			body: func(*fixture) any { return map[string]string{"name": "Phone"} }},
		"POST /api/v1/account/passkeys/:passkey_id/remove": {want: owner, body: empty},
		"GET /api/v1/admin/users/dormant":                  {want: adminOnly},
	}
}

// scimMatrix: no browser session opens SCIM — cookies are not read there,
// so every principal of the matrix is anonymous to it (401). The tokens'
// own refusals are TestSCIMRefusesOutsiders.
func scimMatrix() map[string]matrixCase {
	body := func(*fixture) any { return map[string]any{"userName": "new@clinic.test"} }
	return map[string]matrixCase{
		"GET /scim/v2/Users":                 {want: all(401)},
		"POST /scim/v2/Users":                {want: all(401), body: body},
		"GET /scim/v2/Users/:user_id":        {want: all(401)},
		"PUT /scim/v2/Users/:user_id":        {want: all(401), body: body},
		"PATCH /scim/v2/Users/:user_id":      {want: all(401), body: body},
		"DELETE /scim/v2/Users/:user_id":     {want: all(401)},
		"GET /scim/v2/ServiceProviderConfig": {want: all(401)},
		"GET /scim/v2/Schemas":               {want: all(401)},
		"GET /scim/v2/ResourceTypes":         {want: all(401)},
	}
}
