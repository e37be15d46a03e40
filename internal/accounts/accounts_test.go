package accounts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// TestInvite: a staff account needs a plausible email, a short name, a
// known role and an address nobody else has.
func TestInvite(t *testing.T) {
	d := storetest.DB(t)
	ctx := context.Background()
	svc := accounts.New(store.Env{DB: d})
	expires := time.Now().Add(time.Hour)
	tests := []struct {
		name string
		in   accounts.Invitation
		want error
	}{
		{"ok", accounts.Invitation{Email: "dr.a@clinic.test", Name: "Dr A", Role: "provider"}, nil},
		{"email taken", accounts.Invitation{Email: "dr.a@clinic.test", Name: "Dr A", Role: "admin"}, accounts.ErrEmailTaken},
		{"no at", accounts.Invitation{Email: "clinic.test", Role: "provider"}, accounts.ErrBadEmail},
		{"angle brackets", accounts.Invitation{Email: "<a@b>", Role: "provider"}, accounts.ErrBadEmail},
		{"unknown role", accounts.Invitation{Email: "x@clinic.test", Role: "root"}, accounts.ErrBadRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Expires, tt.in.Event = expires, audit.Event{ActorID: "tester", ActorRole: "admin"}
			u, secret, err := svc.Invite(ctx, tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Invite: %v, want %v", err, tt.want)
			}
			if err == nil && (u.ID == "" || secret == "" || u.Role != tt.in.Role) {
				t.Errorf("Invite: %+v, secret %q", u, secret)
			}
		})
	}
}

// TestChanges: an admin cannot take their own access away; taking a
// user's access away (role, disable) ends their sessions; each change is
// audited.
func TestChanges(t *testing.T) {
	d := storetest.DB(t)
	ctx := context.Background()
	now := time.Now()
	svc := accounts.New(store.Env{DB: d, Clock: func() time.Time { return now }})
	admin := storetest.User(t, d, "admin-"+string(ids.NewParticipantID())+"@clinic.test", "Admin", "admin")
	dr := storetest.User(t, d, "dr-"+string(ids.NewParticipantID())+"@clinic.test", "Dr", "provider")
	ev := audit.Event{ActorID: string(admin.ID), ActorRole: "admin"}
	self := accounts.Change{Admin: admin.ID, Target: admin.ID, Event: ev}
	if err := svc.SetRole(ctx, self, "provider"); !errors.Is(err, accounts.ErrSelf) {
		t.Errorf("own role: %v, want refused", err)
	}
	if err := svc.Disable(ctx, self); !errors.Is(err, accounts.ErrSelf) {
		t.Errorf("disable oneself: %v, want refused", err)
	}
	if err := svc.Disable(ctx, accounts.Change{Admin: admin.ID, Target: "not-an-id", Event: ev}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("disable nobody: %v, want not found", err)
	}

	on := accounts.Change{Admin: admin.ID, Target: dr.ID, Event: ev}
	session := func() []byte {
		h := []byte(string(ids.NewParticipantID()))
		if err := store.CreateSession(ctx, d, store.NewSession{IDHash: h, Kind: store.SessionStaff, UserID: dr.ID, Now: now}); err != nil {
			t.Fatal(err)
		}
		return h
	}
	revoked := func(h []byte) bool {
		s, err := store.SessionByHash(ctx, d, h)
		if err != nil {
			t.Fatal(err)
		}
		return s.RevokedAt != nil
	}
	h := session()
	if err := svc.SetRole(ctx, on, "admin"); err != nil || !revoked(h) {
		t.Fatalf("role change: %v, session revoked %v", err, revoked(h))
	}
	h = session()
	if err := svc.Disable(ctx, on); err != nil || !revoked(h) {
		t.Fatalf("disable: %v, session revoked %v", err, revoked(h))
	}
	if err := svc.Enable(ctx, on); err != nil {
		t.Fatal(err)
	}
	if err := svc.Unlock(ctx, on); err != nil {
		t.Fatal(err)
	}
	u, err := store.UserByID(ctx, d, dr.ID, false)
	if err != nil || u.Role != "admin" || u.DisabledAt != nil {
		t.Fatalf("after the changes: %+v (%v)", u, err)
	}
	var n int
	if err := d.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE resource_id = $1 AND action LIKE 'user.%'`, string(dr.ID)).Scan(&n); err != nil || n != 4 {
		t.Errorf("%d audit entries for the user (%v), want 4", n, err)
	}
}
