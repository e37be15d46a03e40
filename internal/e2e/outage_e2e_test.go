package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// TestE2EWaitingRoomDuringOutage: a patient waits in the waiting room when
// PostgreSQL becomes unreachable. The page says the service is briefly
// unavailable and keeps trying instead of failing; when the database is
// back it is the waiting room again, with the patient's place kept.
func TestE2EWaitingRoomDuringOutage(t *testing.T) {
	var proxy *DBProxy
	var direct string
	srv := StartServer(t, func(c *config.Config) {
		direct = c.Database.URL
		proxy, c.Database.URL = StartDBProxy(t, c.Database.URL)
	})
	pool, err := pgxpool.New(t.Context(), direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	link := inviteFor(t, pool, srv.App.DB(), srv.URL)

	b := NewBrowser(t, WithName("patient"))
	patientJoins(t, b, link, false)
	ctx := t.Context()

	proxy.Cut()
	b.WaitFor(t, ctx, `document.body.dataset.state === 'waiting' && document.body.dataset.service === 'unavailable'
    && document.getElementById('waiting-text').textContent === 'The service is briefly unavailable; trying again…'`, 60*time.Second)

	proxy.Restore()
	b.WaitFor(t, ctx, `document.body.dataset.state === 'waiting' && document.body.dataset.service === undefined
    && document.getElementById('waiting-text').textContent.startsWith('Your provider will admit you')
    && window.openvisit.visitState.me.state === 'waiting'`, 60*time.Second)
}

// inviteFor schedules a visit starting in five minutes with a new patient
// (date of birth patientDOB) and returns its one-time invite link.
func inviteFor(t *testing.T, pool *pgxpool.Pool, db *store.DB, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	u, _ := createUser(t, pool, "outage.provider@clinic.test", "Outage Provider", store.RoleProvider)
	p, err := store.CreatePatient(ctx, db, store.Patient{Name: patientName, DateOfBirth: patientDOB, CreatedBy: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	v := ids.NewVisitID()
	start := time.Now().Add(5 * time.Minute)
	if err := store.ScheduleVisit(ctx, db, v, u.ID, p.ID, "local", start, start.Add(30*time.Minute), "follow-up"); err != nil {
		t.Fatal(err)
	}
	_, secret, err := store.CreateInvite(ctx, pool, v, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return signaling.InviteURL(base, secret)
}
