package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// AppendAll's entries are one unit: next to each other in the chain, in
// order, even while other callers append concurrently, and in one batch
// (a set larger than maxBatch is not split either).
func TestAppendAllCommitsTogether(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	l := New(pool)
	const sets, per, singles = 20, 7, 200
	var wg sync.WaitGroup
	errs := make(chan error, sets+singles)
	for s := range sets {
		wg.Go(func() {
			evs := make([]Event, per)
			for i := range evs {
				evs[i] = Event{Action: "test.list", Outcome: Success, ActorID: fmt.Sprintf("set%d", s), PatientID: fmt.Sprintf("p%d", i)}
			}
			if err := l.AppendAll(ctx, evs); err != nil {
				errs <- err
			}
		})
	}
	for i := range singles {
		wg.Go(func() {
			if err := l.Append(ctx, Event{Action: "test.read", Outcome: Success, ActorID: fmt.Sprintf("single%d", i)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Each set's seqs are contiguous and its patients in the order given.
	rows, err := pool.Query(ctx, `SELECT actor_id, min(seq), max(seq), count(*),
		string_agg(patient_id, ',' ORDER BY seq) FROM audit_events WHERE action = 'test.list' GROUP BY actor_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var actor, order string
		var lo, hi, count int64
		if err := rows.Scan(&actor, &lo, &hi, &count, &order); err != nil {
			t.Fatal(err)
		}
		n++
		if count != per || hi-lo+1 != per {
			t.Errorf("%s: %d entries at seq %d..%d; want %d next to each other", actor, count, lo, hi, per)
		}
		if order != "p0,p1,p2,p3,p4,p5,p6" {
			t.Errorf("%s: patients in chain order %s", actor, order)
		}
	}
	if n != sets {
		t.Fatalf("%d sets written, want %d", n, sets)
	}

	big := make([]Event, maxBatch+5)
	for i := range big {
		big[i] = Event{Action: "test.big", Outcome: Success, PatientID: fmt.Sprintf("p%d", i)}
	}
	before := l.Stats().Batches
	if err := l.AppendAll(ctx, big); err != nil {
		t.Fatal(err)
	}
	if b := l.Stats().Batches - before; b != 1 {
		t.Errorf("a set of %d entries took %d batches, want 1", len(big), b)
	}
}

// An invalid entry refuses the whole set: nothing of it is written.
func TestAppendAllRefusesWhole(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	l := New(pool)
	err := l.AppendAll(ctx, []Event{
		{Action: "test.list", Outcome: Success, PatientID: "p1"},
		{Action: "test.list", Outcome: "maybe", PatientID: "p2"},
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("AppendAll with a bad outcome = %v, want ErrInvalid", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d entries written from a refused set", n)
	}
	if err := l.AppendAll(ctx, nil); err != nil {
		t.Fatalf("empty set: %v", err)
	}
}
