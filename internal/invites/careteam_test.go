package invites_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/invites"
	"github.com/openvisit/openvisit/internal/store"
)

// roleInvite adds an invite of role to v and returns its secret.
func roleInvite(t *testing.T, d *store.DB, v ids.VisitID, role, name string) (store.Invite, string) {
	t.Helper()
	inv, secret, err := store.CreateRoleInvite(context.Background(), d, store.NewInvite{Visit: v, Role: role, Name: name, Email: name + "@example.test"}, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return inv, secret
}

// TestCareTeamInvites: each invitee has their own link with its role; a
// caregiver must give the patient's date of birth, an interpreter need
// not, and both wait in the waiting room as their role; revoking one
// invite leaves the others usable; a new patient link revokes only the
// patient's earlier one.
func TestCareTeamInvites(t *testing.T) {
	d, svc, _ := newService(t)
	ctx := context.Background()
	v, patientSecret := visitWithInvite(t, d, now)
	_, carer := roleInvite(t, d, v, store.InviteeCaregiver, "Carla")
	_, interp := roleInvite(t, d, v, store.InviteeInterpreter, "Ivan")
	spare, spareSecret := roleInvite(t, d, v, store.InviteeCaregiver, "Sam")

	if _, err := svc.Redeem(ctx, invites.Redemption{Secret: carer, DateOfBirth: "1999-09-09"}); !errors.Is(err, invites.ErrWrongDOB) {
		t.Fatalf("caregiver with a wrong date of birth: %v, want %v", err, invites.ErrWrongDOB)
	}
	c, err := svc.Redeem(ctx, invites.Redemption{Secret: carer, DateOfBirth: dob})
	if err != nil {
		t.Fatalf("caregiver: %v", err)
	}
	i, err := svc.Redeem(ctx, invites.Redemption{Secret: interp})
	if err != nil {
		t.Fatalf("interpreter without a date of birth: %v", err)
	}
	for who, a := range map[string]invites.Admission{store.InviteeCaregiver: c, store.InviteeInterpreter: i} {
		pt, err := store.ParticipantByID(ctx, d, v, a.Participant)
		if err != nil {
			t.Fatal(err)
		}
		if pt.Role != who || pt.State != "waiting" {
			t.Errorf("%s is %s/%s, want %s/waiting", who, pt.Role, pt.State, who)
		}
	}

	// The audit trail knows who came in as what.
	for _, role := range []string{store.InviteeCaregiver, store.InviteeInterpreter} {
		var n int
		if err := d.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = $1 AND actor_role = $2 AND outcome = 'success' AND visit_id = $3`,
			invites.ActionRedeem, role, string(v)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%d successful redemptions audited as %s, want 1", n, role)
		}
	}
	if found, err := store.RevokeInvite(ctx, d, v, spare.ID, now); err != nil || !found {
		t.Fatalf("revoke: %v %v", found, err)
	}
	if _, err := svc.Redeem(ctx, invites.Redemption{Secret: spareSecret, DateOfBirth: dob}); !errors.Is(err, invites.ErrRevoked) {
		t.Errorf("revoked caregiver invite: %v, want %v", err, invites.ErrRevoked)
	}
	// A re-issued patient link revokes the patient's old one only.
	if _, _, err := store.CreateInvite(ctx, d, v, now); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Redeem(ctx, invites.Redemption{Secret: patientSecret, DateOfBirth: dob}); !errors.Is(err, invites.ErrRevoked) {
		t.Errorf("patient's old link after a new one: %v, want %v", err, invites.ErrRevoked)
	}
	list, err := store.InviteesOf(ctx, d, v)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, iv := range list {
		names[iv.InviteID] = iv.Name
	}
	if names[spare.ID] != "Sam" {
		t.Errorf("invitee names opened: %v", names)
	}
}

// TestRevokeUsedInviteRemovesItsParticipant: revoking an invite already
// used removes the one who used it, not the others.
func TestRevokeUsedInviteRemovesItsParticipant(t *testing.T) {
	d, svc, _ := newService(t)
	ctx := context.Background()
	v, patientSecret := visitWithInvite(t, d, now)
	inv, carer := roleInvite(t, d, v, store.InviteeCaregiver, "Carla")
	p, err := svc.Redeem(ctx, invites.Redemption{Secret: patientSecret, DateOfBirth: dob})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.Redeem(ctx, invites.Redemption{Secret: carer, DateOfBirth: dob})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.RevokeInvite(ctx, d, v, inv.ID, now); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[ids.ParticipantID]string{p.Participant: "waiting", c.Participant: "removed"} {
		pt, err := store.ParticipantByID(ctx, d, v, id)
		if err != nil {
			t.Fatal(err)
		}
		if pt.State != want {
			t.Errorf("participant %s is %s, want %s", pt.Role, pt.State, want)
		}
	}
}

// TestVisitFull: a visit holding store.MaxPeople people admits no one more.
func TestVisitFull(t *testing.T) {
	d, svc, _ := newService(t)
	ctx := context.Background()
	v, _ := visitWithInvite(t, d, now)
	for range store.MaxPeople {
		_, s := roleInvite(t, d, v, store.InviteeInterpreter, "I")
		if _, err := svc.Redeem(ctx, invites.Redemption{Secret: s}); err != nil {
			t.Fatal(err)
		}
	}
	_, s := roleInvite(t, d, v, store.InviteeInterpreter, "I")
	if _, err := svc.Redeem(ctx, invites.Redemption{Secret: s}); !errors.Is(err, invites.ErrFull) {
		t.Errorf("ninth person: %v, want %v", err, invites.ErrFull)
	}
}
