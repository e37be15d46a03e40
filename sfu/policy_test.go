package sfu

import (
	"testing"

	"github.com/openvisit/openvisit/internal/token"
)

// TestPolicyFor: a recorder is a hidden, listen-only subscriber of the best
// layers; everyone else gets the zero policy.
func TestPolicyFor(t *testing.T) {
	for _, tc := range []struct {
		role token.Role
		want policy
	}{
		{token.RolePatient, policy{layers: layersFit}},
		{token.RoleProvider, policy{layers: layersFit}},
		{token.RoleRecorder, policy{hidden: true, listenOnly: true, layers: layersBest}},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			if got := policyFor(tc.role); got != tc.want {
				t.Fatalf("policyFor(%s) = %+v, want %+v", tc.role, got, tc.want)
			}
		})
	}
}
