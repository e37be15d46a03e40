package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pubOf(key ed25519.PrivateKey) ed25519.PublicKey { return key.Public().(ed25519.PublicKey) }

// appendN appends n entries through l.
func appendN(t testing.TB, l *Log, n int) {
	t.Helper()
	for i := range n {
		e := Event{Action: "test.read", Outcome: Success, ActorID: fmt.Sprintf("u%d", i%3),
			ResourceType: "recording", ResourceID: fmt.Sprintf("r%d", i), VisitID: "v1", PatientID: "p1"}
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// tamper runs stmts as the superuser with every user trigger off
// (session_replication_role = replica), as an attacker with superuser
// rights would.
func tamper(t testing.TB, pool *pgxpool.Pool, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// rechain recomputes prev_hash and hash from seq `from` on, and the head,
// with the database's own hash function: a consistent rewritten chain.
const rechain = `DO $$
DECLARE r audit_events; prev bytea; h bytea;
BEGIN
	SELECT hash INTO prev FROM audit_events WHERE seq < %[1]d ORDER BY seq DESC LIMIT 1;
	prev := coalesce(prev, '\x0000000000000000000000000000000000000000000000000000000000000000');
	FOR r IN SELECT * FROM audit_events WHERE seq >= %[1]d ORDER BY seq LOOP
		h := audit_event_hash(prev, r.seq, r.at, r.actor_id, r.actor_role, r.action, r.resource_type,
			r.resource_id, r.patient_id, r.visit_id, r.ip, r.user_agent, r.outcome, r.reason);
		UPDATE audit_events SET prev_hash = prev, hash = h WHERE seq = r.seq;
		prev := h;
	END LOOP;
	UPDATE audit_chain_head SET seq = (SELECT max(seq) FROM audit_events), hash = prev;
END $$`

func verifyOK(t testing.TB, pool *pgxpool.Pool, pub ed25519.PublicKey, anchors ...AnchorReader) Report {
	t.Helper()
	rep, err := Verify(context.Background(), pool, pub, anchors...)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify of an untouched trail: %v", rep.Findings)
	}
	return rep
}

// kinds lists a report's findings as "kind#seq", sorted.
func kinds(r Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, fmt.Sprintf("%s#%d", f.Kind, f.Seq))
	}
	slices.Sort(out)
	return out
}
