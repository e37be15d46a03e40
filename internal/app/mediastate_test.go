package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/e2e"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// TestPatientMediaStateReachesProvider: the media state the SFU reports for
// the patient's PeerConnection is written to PostgreSQL and reaches the
// provider through the visit state API and its event stream: connected
// once the patient's media is up, left once the patient has gone. The
// patient's page reports nothing: the state comes from the media node.
func TestPatientMediaStateReachesProvider(t *testing.T) {
	s := startServer(t)
	prov := s.enrol(t, "p@clinic.test", "provider")
	pc := s.newClient(t)
	pc.mustLogin(prov)
	const dob = "1971-03-04"
	v, inv := scheduled(t, pc, s.Clock.Now().Add(5*time.Minute), dob)
	stream := pc.events("/api/v1/visits/" + string(v.ID) + "/events")

	patient := s.newClient(t)
	if r := patient.redeem(inv.secret(t), dob); r.Status != 200 {
		t.Fatalf("redeem: %d %s", r.Status, r.Body)
	}
	st := stream.until(func(st stateEvent) bool { return len(st.Participants) == 1 })
	pid := st.Participants[0].ID
	if st.Participants[0].MediaState != "" {
		t.Fatalf("a waiting patient has media state %q, want none", st.Participants[0].MediaState)
	}
	if r := pc.do("POST", "/api/v1/visits/"+string(v.ID)+"/participants/"+string(pid)+"/admit", struct{}{}); r.Status != 200 {
		t.Fatalf("admit: %d %s", r.Status, r.Body)
	}
	var g signaling.JoinGrant
	if r := patient.do("POST", "/api/v1/visits/"+string(v.ID)+"/join", struct{}{}); r.Status != 200 {
		t.Fatalf("join: %d %s", r.Status, r.Body)
	} else {
		r.decode(t, &g)
	}
	peer := e2e.JoinPeer(t, g, e2e.PeerOptions{ConfigureWebRTC: e2e.LoopbackWebRTC})

	mediaOf := func(st stateEvent) string {
		for _, p := range st.Participants {
			if p.ID == pid {
				return p.MediaState
			}
		}
		return ""
	}
	stream.until(func(st stateEvent) bool { return mediaOf(st) == "connected" })

	// The same fact through the state API and in the database.
	var api struct{ Participants []store.Participant }
	pc.do("GET", "/api/v1/visits/"+string(v.ID)+"/state", nil).decode(t, &api)
	if len(api.Participants) != 1 || api.Participants[0].MediaState != "connected" || api.Participants[0].MediaStateAt == nil {
		t.Fatalf("state API shows %+v, want the patient connected", api.Participants)
	}
	var db string
	if err := s.Pool.QueryRow(context.Background(), `SELECT media_state FROM participants WHERE id = $1`, string(pid)).Scan(&db); err != nil || db != "connected" {
		t.Fatalf("database media_state = %q (%v), want connected", db, err)
	}

	peer.Close()
	stream.until(func(st stateEvent) bool { return mediaOf(st) == "left" })

	// A stale report (a node the visit left long ago) cannot overwrite it.
	ok, err := store.SetMediaState(context.Background(), s.Pool, v.ID, pid, "connected", time.Now().Add(-time.Hour))
	if err != nil || ok {
		t.Fatalf("stale report applied: %v %v", ok, err)
	}
	// A failure is remembered while the patient tries again.
	for i, st := range []string{"failed", "connecting"} {
		if ok, err := store.SetMediaState(context.Background(), s.Pool, v.ID, pid, st, time.Now().Add(time.Duration(i)*time.Second)); err != nil || !ok {
			t.Fatalf("report %s: %v %v", st, ok, err)
		}
	}
	st = stream.until(func(st stateEvent) bool { return mediaOf(st) == "connecting" })
	if st.Participants[0].MediaFailedAt == nil {
		t.Error("media_failed_at not kept while the patient tries again")
	}
}

// TestJoinGrantCarriesHelp: the clinic's help line from config reaches the
// page in the join grant it already reads; without one, the grant has no
// help field.
func TestJoinGrantCarriesHelp(t *testing.T) {
	for _, tc := range []struct {
		name string
		help config.Clinic
	}{
		{"configured", config.Clinic{HelpText: "Call the front desk, weekdays 8 to 6.", HelpPhone: "+1 555 0100"}},
		{"none", config.Clinic{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServerWith(t, func(c *config.Config) { c.Clinic = tc.help })
			g, r := s.providerJoin(t)
			switch {
			case tc.help == (config.Clinic{}):
				if g.Help != nil || strings.Contains(string(r.Body), `"help"`) {
					t.Fatalf("grant carries help %s, want none", r.Body)
				}
			case g.Help == nil || g.Help.Text != tc.help.HelpText || g.Help.Phone != tc.help.HelpPhone:
				t.Fatalf("grant help = %+v, want %+v", g.Help, tc.help)
			}
		})
	}
}
