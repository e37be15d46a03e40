package signaling

import (
	"testing"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/store"
)

func TestPasswordPolicy(t *testing.T) {
	if passwordPolicy(config.OIDC{LocalPasswords: config.LocalPasswordsEveryone}) != nil {
		t.Fatal("everyone: want no restriction")
	}
	allow := passwordPolicy(config.OIDC{LocalPasswords: config.LocalPasswordsBreakGlass, BreakGlassAdmins: []string{" Root@Clinic.test"}})
	for _, tc := range []struct {
		u    store.User
		want bool
	}{
		{store.User{Email: "root@clinic.test", Role: store.RoleAdmin}, true},
		{store.User{Email: "root@clinic.test", Role: store.RoleProvider}, false}, // admins only
		{store.User{Email: "other@clinic.test", Role: store.RoleAdmin}, false},
	} {
		if got := allow(tc.u); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.u.Role, tc.u.Email, got, tc.want)
		}
	}
}
