package visits_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/internal/visits"
)

// TestJoin: a provider joins as their own participant, a patient only once
// admitted, nobody else at all, and nobody once the visit ended or while
// no media node can take it; the seat's relay credentials last until an
// hour after the scheduled end.
func TestJoin(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	now := time.Now().Truncate(time.Second)
	end := now.Add(time.Hour)
	storetest.MediaNode(t, db, "node-a")
	placed := scheduled(t, db, now.Add(-time.Minute), end, store.StatusInProgress)
	unplaced := scheduled(t, db, now.Add(-time.Minute), end, store.StatusInProgress)
	ended := scheduled(t, db, now.Add(-time.Minute), end, store.StatusCompleted)
	for _, v := range []ids.VisitID{placed, ended} {
		if _, err := db.Exec(ctx, `UPDATE visits SET sfu_node_id = 'node-a' WHERE id = $1`, string(v)); err != nil {
			t.Fatal(err)
		}
	}
	dr := storetest.User(t, db, "dr-join@clinic.test", "Dr", store.RoleProvider)
	patient := func(state string) ids.ParticipantID {
		pid := ids.NewParticipantID()
		if _, err := db.Exec(ctx, `INSERT INTO participants (id, visit_id, role, subject, state) VALUES ($1, $2, 'patient', $3, $4)`,
			string(pid), string(placed), string(pid), state); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	admitted, waiting := patient("admitted"), patient("waiting")
	place := visits.Placement{Node: "node-a"}
	mint := func(_ pgx.Tx, s visits.Seat) (string, error) { return "token-for-" + string(s.Grant.Participant), nil }
	tests := []struct {
		name string
		j    visits.Joining
		role token.Role
		want error
	}{
		{"provider", visits.Joining{Visit: placed, Provider: dr.ID}, token.RoleProvider, nil},
		{"admitted patient", visits.Joining{Visit: placed, Patient: admitted}, token.RolePatient, nil},
		{"waiting patient", visits.Joining{Visit: placed, Patient: waiting}, "", visits.ErrNotAdmitted},
		{"nobody", visits.Joining{Visit: placed}, "", store.ErrNotFound},
		{"ended visit", visits.Joining{Visit: ended, Provider: dr.ID}, "", visits.ErrVisitClosed},
		{"no media node", visits.Joining{Visit: unplaced, Provider: dr.ID}, "", visits.ErrNoMediaNode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.j.Event = audit.Event{ActorID: "tester", ActorRole: "provider", Action: "visit.join", ResourceType: "visit", Outcome: audit.Success}
			seat, err := place.Join(ctx, db, tt.j, now, mint)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Join: %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			g := seat.Grant
			if g.Role != tt.role || g.Node != "node-a" || seat.URL != "wss://media.test/sfu/ws" ||
				seat.Token != "token-for-"+string(g.Participant) || !seat.RelayUntil.Equal(end.Add(time.Hour)) {
				t.Errorf("seat %+v", seat)
			}
			var joined *time.Time
			if err := db.QueryRow(ctx, `SELECT joined_at FROM participants WHERE id = $1`, string(g.Participant)).Scan(&joined); err != nil || joined == nil {
				t.Errorf("participant not marked joined (%v)", err)
			}
		})
	}
}
