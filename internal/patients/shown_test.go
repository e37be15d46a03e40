package patients

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openvisit/openvisit/internal/audit"
)

func TestShownEvents(t *testing.T) {
	list := audit.Event{Action: "visit.list", ResourceType: "visit", Reason: "schedule"}
	record := audit.Event{Action: "patient.view", ResourceType: "patient", Reason: "search"}
	tests := []struct {
		name     string
		base     audit.Event
		patients []string
		want     []audit.Event
	}{
		{"none", list, nil, nil},
		{"only visits without a patient", list, []string{"", ""}, nil},
		{"one entry per distinct patient, in order", list, []string{"p2", "", "p1", "p2"}, []audit.Event{
			{Action: "visit.list", ResourceType: "visit", Reason: "schedule", PatientID: "p2"},
			{Action: "visit.list", ResourceType: "visit", Reason: "schedule", PatientID: "p1"},
		}},
		{"a patient record names itself as the resource", record, []string{"p1"}, []audit.Event{
			{Action: "patient.view", ResourceType: "patient", ResourceID: "p1", PatientID: "p1", Reason: "search"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ShownEvents(tt.base, tt.patients)); diff != "" {
				t.Errorf("ShownEvents (-want +got):\n%s", diff)
			}
		})
	}
}
