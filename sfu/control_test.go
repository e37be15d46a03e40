package sfu

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// mintFor mints a token and remembers its ID by subject, so that a test
// can revoke the participant it admits.
func (e *testEnv) mintFor(t *testing.T, visit ids.VisitID, p ids.ParticipantID, role token.Role, subject string) string {
	t.Helper()
	tok, claims, err := e.minter.Mint(token.Grant{Visit: visit, Participant: p, Role: role, Subject: subject, Node: testNode})
	if err != nil {
		t.Fatal(err)
	}
	if e.tokenIDs == nil {
		e.tokenIDs = map[string]string{}
	}
	e.tokenIDs[subject] = claims.ID
	return tok
}

// revokeRoom revokes every participant of the node (what the revocation
// watcher does when their visit ended) and returns how many there were.
func (e *testEnv) revokeRoom() int {
	n := 0
	for _, id := range e.sfu.LiveTokens(nil) {
		if e.sfu.Revoke(id) {
			n++
		}
	}
	return n
}

func TestRemoval(t *testing.T) {
	env := newTestEnv(t)
	visit := ids.NewVisitID()
	pid := ids.NewParticipantID()

	outer := t // sockets outlive the subtest that opened them
	joined := func(t *testing.T, tok string) map[string]any {
		t.Helper()
		c := env.dial(outer)
		join(t, c, tok, visit)
		m := readMsg(t, c)
		if m["type"] != "joined" {
			t.Fatalf("got %v, want joined", m)
		}
		env.lastConn = c
		return m
	}

	t.Run("duplicate", func(t *testing.T) {
		joined(t, env.mintFor(t, visit, pid, token.RolePatient, "patient-1"))
		old := env.lastConn
		joined(t, env.mintFor(t, visit, pid, token.RolePatient, "patient-1"))
		expectError(t, old, protocol.CodeDuplicate, 4009)
		if st := env.sfu.Stats(); st.Participants != 1 {
			t.Fatalf("stats %+v, want one participant", st)
		}
	})
	t.Run("remove participant", func(t *testing.T) {
		c := env.lastConn
		if !env.sfu.Revoke(env.tokenIDs["patient-1"]) {
			t.Fatal("Revoke = false")
		}
		expectError(t, c, protocol.CodeRemoved, 4010)
		if env.sfu.Revoke(env.tokenIDs["patient-1"]) {
			t.Fatal("second Revoke = true")
		}
		if st := env.sfu.Stats(); st.Rooms != 0 {
			t.Fatalf("stats %+v, want no rooms", st)
		}
	})
	t.Run("recorder not announced", func(t *testing.T) {
		m := joined(t, env.mintFor(t, visit, ids.NewParticipantID(), token.RoleProvider, "provider-1"))
		provider := env.lastConn
		if ps := m["participants"].([]any); len(ps) != 0 {
			t.Fatalf("participants %v, want none", ps)
		}
		joined(t, env.mintFor(t, visit, ids.NewParticipantID(), token.RoleRecorder, "recorder"))
		m = joined(t, env.mintFor(t, visit, ids.NewParticipantID(), token.RolePatient, "patient-2"))
		patient := env.lastConn
		ps := m["participants"].([]any)
		if len(ps) != 1 || ps[0].(map[string]any)["role"] != "provider" {
			t.Fatalf("patient sees %v, want the provider only", ps)
		}
		// The provider hears of the patient, not of the recorder.
		if m := readMsg(t, provider); m["type"] != "participant_joined" || m["participant"].(map[string]any)["role"] != "patient" {
			t.Fatalf("provider got %v", m)
		}
		if !env.sfu.Revoke(env.tokenIDs["patient-2"]) {
			t.Fatal("Revoke(patient-2) = false")
		}
		expectError(t, patient, protocol.CodeRemoved, 4010)
		if m := readMsg(t, provider); m["type"] != "participant_left" {
			t.Fatalf("provider got %v", m)
		}
		if n := env.revokeRoom(); n != 2 {
			t.Fatalf("revoked %d, want 2", n)
		}
		expectError(t, provider, protocol.CodeRemoved, 4010)
		if st := env.sfu.Stats(); st.Rooms != 0 || st.Participants != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestMetrics(t *testing.T) {
	env := newTestEnv(t)
	reg := prometheus.NewRegistry()
	if err := env.sfu.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := New(Params{Node: testNode, Verifier: env.sfu.verifier, Burner: env.sfu.burner, UDPAddr: "127.0.0.1:0", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"openvisit_sfu_rooms", "openvisit_sfu_participants",
		"openvisit_sfu_forwarded_packets_total", "openvisit_sfu_forwarded_bytes_total",
		"openvisit_sfu_dropped_packets_total"} {
		if !got[name] {
			t.Errorf("metric %s missing", name)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close unregisters, so a new SFU can use the same registry.
	s2, err := New(Params{Node: testNode, Verifier: env.sfu.verifier, Burner: env.sfu.burner, UDPAddr: "127.0.0.1:0", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	_ = s2.Close()
}
