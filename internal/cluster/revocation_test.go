package cluster

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// revokeWithin is how soon a revocation must end a call on another process.
const revokeWithin = 2 * time.Second

// TestRevocationReachesMediaNode runs the API and a media node as separate
// processes sharing one database: the API never calls into the media node,
// yet every way of ending someone's access ends their media connection on
// that node within 2 s, and leaves the others in the call.
func TestRevocationReachesMediaNode(t *testing.T) {
	hostIP(t)
	c := newCluster(t)
	c.start("api", "api")
	c.start("m1", "media")
	c.waitLive("m1")
	admin := c.admin()

	t.Run("disable user", func(t *testing.T) {
		prov, provID := c.provider()
		v := prov.newVisit()
		pat, _ := c.patientID(v)
		doc, other := joinPeer(t, prov.join(v)), joinPeer(t, pat.join(v))
		revokes(t, doc, other, func() (int, []byte) {
			return admin.do("POST", "/api/v1/admin/users/"+string(provID)+"/disable", struct{}{})
		})
	})
	t.Run("remove participant", func(t *testing.T) {
		prov, _ := c.provider()
		v := prov.newVisit()
		pat, pid := c.patientID(v)
		doc, patient := joinPeer(t, prov.join(v)), joinPeer(t, pat.join(v))
		revokes(t, patient, doc, func() (int, []byte) {
			return prov.do("POST", "/api/v1/visits/"+string(v)+"/participants/"+string(pid)+"/remove", struct{}{})
		})
	})
	t.Run("end visit", func(t *testing.T) {
		prov, _ := c.provider()
		v := prov.newVisit()
		pat, _ := c.patientID(v)
		doc, patient := joinPeer(t, prov.join(v)), joinPeer(t, pat.join(v))
		revokes(t, patient, peer{}, func() (int, []byte) {
			return prov.do("POST", "/api/v1/visits/"+string(v)+"/end", struct{}{})
		})
		waitClosed(t, doc, "the provider's connection")
	})
	t.Run("logout all", func(t *testing.T) {
		prov, _ := c.provider()
		v := prov.newVisit()
		pat, _ := c.patientID(v)
		doc, patient := joinPeer(t, prov.join(v)), joinPeer(t, pat.join(v))
		revokes(t, doc, patient, func() (int, []byte) {
			return prov.do("POST", "/api/v1/auth/logout-all", struct{}{})
		})
	})
	t.Run("logout", func(t *testing.T) {
		prov, _ := c.provider()
		v := prov.newVisit()
		pat, _ := c.patientID(v)
		doc, patient := joinPeer(t, prov.join(v)), joinPeer(t, pat.join(v))
		revokes(t, patient, doc, func() (int, []byte) {
			return pat.do("POST", "/api/v1/auth/logout", struct{}{})
		})
	})
}

// revokes runs act (an API call that must answer 200) and checks that
// victim's media connection is closed by the node with 4010 within
// revokeWithin, while bystander (when set) stays connected.
func revokes(t *testing.T, victim, bystander peer, act func() (int, []byte)) {
	t.Helper()
	if status, b := act(); status != http.StatusOK {
		t.Fatalf("revoking call = %d %s", status, b)
	}
	done := time.Now()
	select {
	case <-victim.Closed():
	case <-time.After(revokeWithin):
		t.Fatalf("the media connection was still open %v after the revocation", revokeWithin)
	}
	t.Logf("closed %v after the API answered", time.Since(done).Round(time.Millisecond))
	if code := victim.CloseCode(); code != 4010 {
		t.Errorf("closed with %d, want 4010 (removed)", code)
	}
	if bystander.Peer != nil {
		time.Sleep(revokeWithin) // a second re-check has run
		if bystander.Dropped() {
			t.Error("the other participant's connection closed too")
		}
	}
}

func waitClosed(t *testing.T, p peer, what string) {
	t.Helper()
	select {
	case <-p.Closed():
	case <-time.After(revokeWithin):
		t.Fatalf("%s was still open %v after the visit ended", what, revokeWithin)
	}
}

// admin makes an admin and a session for them.
func (c *cluster) admin() *client {
	c.t.Helper()
	u, err := store.CreateUser(context.Background(), c.pool, fmt.Sprintf("admin-%d@clinic.test", time.Now().UnixNano()), "Admin", "admin")
	if err != nil {
		c.t.Fatal(err)
	}
	return c.session(store.NewSession{Kind: store.SessionStaff, UserID: u.ID})
}

// patientID is patient, also returning the participant's ID.
func (c *cluster) patientID(v ids.VisitID) (*client, ids.ParticipantID) {
	c.t.Helper()
	pid := ids.NewParticipantID()
	if _, err := c.pool.Exec(context.Background(), `INSERT INTO participants (id, visit_id, role, subject, state)
		VALUES ($1, $2, 'patient', $3, 'admitted')`, string(pid), string(v), string(pid)); err != nil {
		c.t.Fatal(err)
	}
	return c.session(store.NewSession{Kind: store.SessionPatient, VisitID: v, ParticipantID: pid}), pid
}
