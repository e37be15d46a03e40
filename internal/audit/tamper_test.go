package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A superuser (triggers off) edits, deletes, reorders, truncates and
// rewrites rows; Verify names each. Every case starts from a fresh database
// holding 10 entries and a signed checkpoint at #10.
func TestAuditTamperDetected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stmts []string
		want  []string
	}{
		{"untouched", nil, nil},
		{"edit", []string{`UPDATE audit_events SET actor_id = 'u-other' WHERE seq = 5`},
			[]string{"edited#5"}},
		{"edit timestamp by one microsecond", []string{`UPDATE audit_events SET at = at + interval '1 microsecond' WHERE seq = 2`},
			[]string{"edited#2"}},
		{"delete", []string{`DELETE FROM audit_events WHERE seq = 5`},
			[]string{"deleted#5"}},
		{"delete several", []string{`DELETE FROM audit_events WHERE seq BETWEEN 4 AND 6`},
			[]string{"deleted#4"}},
		{"reorder", []string{
			`UPDATE audit_events SET seq = seq + 1000 WHERE seq IN (3, 4)`,
			`UPDATE audit_events SET seq = CASE seq WHEN 1003 THEN 4 ELSE 3 END WHERE seq IN (1003, 1004)`},
			[]string{"reordered#3", "reordered#4"}},
		{"truncate tail", []string{
			`DELETE FROM audit_events WHERE seq > 7`,
			`UPDATE audit_chain_head SET seq = 7, hash = (SELECT hash FROM audit_events WHERE seq = 7)`},
			[]string{"truncated#8"}},
		{"truncate all", []string{
			`DELETE FROM audit_events`,
			`UPDATE audit_chain_head SET seq = 0, hash = '\x0000000000000000000000000000000000000000000000000000000000000000'`},
			[]string{"truncated#1"}},
		{"truncate tail, head left", []string{`DELETE FROM audit_events WHERE seq > 7`},
			[]string{"truncated#8"}},
		{"rewrite", []string{
			`UPDATE audit_events SET outcome = 'denied' WHERE seq = 5`,
			fmt.Sprintf(rechain, 5)},
			[]string{"rewritten#10"}},
		{"replace row with recomputed hash", []string{
			`UPDATE audit_events SET outcome = 'denied' WHERE seq = 5`,
			`UPDATE audit_events SET hash = audit_event_hash(prev_hash, seq, at, actor_id, actor_role, action,
				resource_type, resource_id, patient_id, visit_id, ip, user_agent, outcome, reason) WHERE seq = 5`},
			[]string{"broken_link#6"}},
		{"forged row outside the chain", []string{
			`INSERT INTO audit_events (seq, action, outcome, prev_hash, hash)
			 SELECT 11, 'test.read', 'success', hash, hash FROM audit_events WHERE seq = 10`},
			[]string{"edited#11", "head_mismatch#11"}},
		{"head moved", []string{`UPDATE audit_chain_head SET seq = 9`},
			[]string{"head_mismatch#10"}},
		{"head deleted", []string{`DELETE FROM audit_chain_head`},
			[]string{"head_mismatch#10"}},
		{"checkpoint forged in postgres", []string{
			`INSERT INTO audit_checkpoints (seq, head_hash, signature, key_id, signed_at)
			 SELECT seq, head_hash, signature, key_id, signed_at + interval '1 second' FROM audit_checkpoints`},
			[]string{"bad_checkpoint#10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			pool := newPool(t)
			key := newKey(t)
			appendN(t, New(pool), 10)
			cp, err := mustCheckpointer(t, pool, key, nil).CheckpointNow(ctx)
			if err != nil || cp.Seq != 10 {
				t.Fatalf("checkpoint = %d, %v", cp.Seq, err)
			}
			verifyOK(t, pool, pubOf(key))

			tamper(t, pool, tc.stmts...)
			rep, err := Verify(ctx, pool, pubOf(key))
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(rep); !slices.Equal(got, tc.want) {
				t.Errorf("findings = %v, want %v\n%v", got, tc.want, rep.Findings)
			}
		})
	}
}

func mustCheckpointer(t testing.TB, pool *pgxpool.Pool, key ed25519.PrivateKey, a AnchorWriter) *Checkpointer {
	t.Helper()
	c, err := NewCheckpointer(CheckpointerParams{Pool: pool, Key: key, Anchor: a,
		OnFailure: func(err error) { t.Errorf("checkpoint failure: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
