package patients

import (
	"context"
	"errors"
	"fmt"

	"github.com/openvisit/openvisit/internal/audit"
)

// Views that show patients (a schedule with names, search results, the
// waiting panel, the mail outbox, a breach scope) name every patient they
// show in the audit trail, so that a patient's access report and an
// incident's scope count the view. audit_events has one patient_id column,
// so a view writes one entry per distinct patient shown, all appended as
// one unit through the audit log's batch path (audit.Log.AppendAll) before
// the response is written; when that fails the view is refused
// (ErrNotRecorded). This file is the one place that rule is written.

// ErrNotRecorded: the audit log could not record a view, so it is
// refused.
var ErrNotRecorded = errors.New("patients: view not recorded in the audit log")

// ShownEvents returns one copy of base per distinct patient ID in patients
// (in first-seen order, empty IDs skipped), each naming its patient. A base
// about a patient record (resource type "patient") names it as the
// resource too.
func ShownEvents(base audit.Event, patients []string) []audit.Event {
	seen := make(map[string]bool, len(patients))
	var out []audit.Event
	for _, id := range patients {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		e := base
		e.PatientID = id
		if e.ResourceType == "patient" {
			e.ResourceID = id
		}
		out = append(out, e)
	}
	return out
}

// Showing is how a view that shows no patient is recorded.
type Showing int

const (
	// NoneUnrecorded: a view that shows no patient leaves no entry (a
	// search: its text may be a name and never goes into the trail).
	NoneUnrecorded Showing = iota
	// NoneRecorded: a view that shows no patient still records base (a
	// list that was read, empty or not).
	NoneRecorded
)

// RecordShown records a view of patients: ShownEvents(base, patients),
// or base alone when none is shown and none says so, appended as one unit.
// An error (ErrNotRecorded) refuses the view.
func RecordShown(ctx context.Context, log *audit.Log, base audit.Event, patients []string, none Showing) error {
	evs := ShownEvents(base, patients)
	if len(evs) == 0 && none == NoneRecorded {
		evs = []audit.Event{base}
	}
	if err := log.AppendAll(ctx, evs); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	return nil
}

// ShownList records a view of list, whose items each name a patient
// (patient(item); "" for none), as RecordShown does, and returns list once
// the view is recorded: nil and the error (ErrNotRecorded) when it is not.
func ShownList[T any](ctx context.Context, log *audit.Log, base audit.Event, list []T, patient func(T) string, none Showing) ([]T, error) {
	shown := make([]string, len(list))
	for i, item := range list {
		shown[i] = patient(item)
	}
	if err := RecordShown(ctx, log, base, shown, none); err != nil {
		return nil, err
	}
	return list, nil
}
