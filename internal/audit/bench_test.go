package audit

import (
	"context"
	"testing"
)

// BenchmarkAppend measures committed, chained entries per second with many
// concurrent callers (batched by group commit).
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	l := New(newPool(b))
	b.SetParallelism(16) // 16 callers per GOMAXPROCS
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		e := Event{Action: "bench.read", Outcome: Success, ActorID: "u1", ActorRole: "admin",
			ResourceType: "recording", ResourceID: "r1", PatientID: "p1", VisitID: "v1",
			IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}
		for pb.Next() {
			if err := l.Append(ctx, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(st.Entries)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(st.Entries)/float64(max(st.Batches, 1)), "entries/batch")
}

// BenchmarkAppendUnbatched is the baseline: the same callers, each entry in
// its own transaction (AppendTx on the pool), queueing on the chain head.
func BenchmarkAppendUnbatched(b *testing.B) {
	ctx := context.Background()
	pool := newPool(b)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		e := Event{Action: "bench.read", Outcome: Success, ActorID: "u1", ResourceID: "r1", VisitID: "v1"}
		for pb.Next() {
			if err := AppendTx(ctx, pool, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkVerify measures entries verified per second (streamed from
// Postgres, hashed, checked against a checkpoint).
func BenchmarkVerify(b *testing.B) {
	const n = 50000
	ctx := context.Background()
	pool := newPool(b)
	if _, err := pool.Exec(ctx, `INSERT INTO audit_events (action, outcome, actor_id, resource_type, resource_id, patient_id, visit_id, ip, user_agent)
		SELECT 'bench.read', 'success', 'u' || i, 'recording', 'r' || i, 'p1', 'v1', '192.0.2.1', 'Mozilla/5.0 (X11; Linux x86_64)'
		FROM generate_series(1, $1) AS i`, n); err != nil {
		b.Fatal(err)
	}
	key := newKey(b)
	if _, err := mustCheckpointer(b, pool, key, nil).CheckpointNow(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(ctx, pool, pubOf(key))
		if err != nil || !rep.OK() || rep.Entries != n {
			b.Fatalf("verify: %d entries, %v, %v", rep.Entries, rep.Findings, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
