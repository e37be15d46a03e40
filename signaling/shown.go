package signaling

import (
	"github.com/openvisit/openvisit/internal/audit"
)

// Views that show patients (a schedule with names, search results, the
// waiting panel, a breach scope) name every patient they show in the audit
// trail, so that a patient's access report and an incident's scope count
// the view. audit_events has one patient_id column, so a view writes one
// entry per distinct patient shown, all appended as one unit through the
// audit log's batch path (audit.Log.AppendAll) before the response is
// written; when that fails the view is refused.

// shownEvents returns one copy of base per distinct patient ID in patients
// (in first-seen order, empty IDs skipped), each naming its patient. A base
// about a patient record (resource type "patient") names it as the
// resource too.
func shownEvents(base audit.Event, patients []string) []audit.Event {
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
