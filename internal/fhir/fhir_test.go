package fhir_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/openvisit/openvisit/internal/fhir"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

func codec(t testing.TB) *fhir.Codec {
	t.Helper()
	c, err := fhir.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sampleVisit is a visit in status with every time set.
func sampleVisit(status string) store.ScheduledVisit {
	at := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	end, started, ended := at.Add(30*time.Minute), at.Add(time.Minute), at.Add(25*time.Minute)
	v := store.ScheduledVisit{PatientID: "5b0c2a4e-8f0e-4d59-9a39-2f1c7b7d1e01", StartedAt: &started, EndedAt: &ended}
	v.ID, v.Status, v.ProviderID = ids.VisitID("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"), status, ids.UserID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
	v.ScheduledStart, v.ScheduledEnd, v.CreatedAt = &at, &end, at.Add(-24*time.Hour)
	return v
}

// TestFHIRResourcesValidate: every kind of resource the API emits passes
// the library's validation, and reads back through its validating
// unmarshaller to the same resource; bad input is refused with the
// library's reason.
func TestFHIRResourcesValidate(t *testing.T) {
	c := codec(t)
	joined, left := time.Date(2026, 12, 7, 15, 1, 0, 0, time.UTC), time.Date(2026, 12, 7, 15, 25, 0, 0, time.UTC)
	parts := []store.Participant{
		{ID: "p1", Role: "provider", UserID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", JoinedAt: &joined, LeftAt: &left},
		{ID: "p2", Role: "patient"},
		{ID: "p3", Role: "interpreter", UserID: "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"},
	}
	cs, err := c.Capability("https://clinic.test/fhir/R4", "https://clinic.test/oauth/token")
	if err != nil {
		t.Fatalf("the CapabilityStatement does not validate: %v", err)
	}
	patient := fhir.Patient(store.Patient{ID: "5b0c2a4e-8f0e-4d59-9a39-2f1c7b7d1e01", Name: "Pat Example", DateOfBirth: "1980-02-29",
		Email: "pat@example.test", Phone: "+1 555 0100", State: "CA", MRN: "urn:oid:1.2.3|A-77"})
	resources := map[string]proto.Message{
		"Patient":             patient,
		"Patient, bare":       fhir.Patient(store.Patient{ID: "5b0c2a4e-8f0e-4d59-9a39-2f1c7b7d1e01", Name: "P", DateOfBirth: "1990-01-01"}),
		"Appointment+invite":  fhir.Appointment(sampleVisit(store.StatusScheduled), "https://clinic.test/join#invite=secret"),
		"Encounter":           fhir.Encounter(sampleVisit(store.StatusCompleted), parts, true),
		"Encounter, planned":  fhir.Encounter(store.ScheduledVisit{Visit: store.Visit{ID: "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", Status: store.StatusScheduled}}, nil, false),
		"CapabilityStatement": cs,
		"OperationOutcome":    fhir.Outcome(cpb.IssueSeverityCode_ERROR, cpb.IssueTypeCode_NOT_FOUND, "Not found. (not_found)"),
		"Bundle": fhir.Searchset("https://clinic.test/fhir/R4", time.Now(),
			[]*bcrpb.ContainedResource{fhir.ContainedPatient(patient)}, []string{"Patient/5b0c2a4e-8f0e-4d59-9a39-2f1c7b7d1e01"}),
	}
	for _, st := range []string{store.StatusScheduled, store.StatusWaiting, store.StatusInProgress, store.StatusCompleted,
		store.StatusCancelled, store.StatusNoShow} {
		resources["Appointment "+st] = fhir.Appointment(sampleVisit(st), "")
		resources["Encounter "+st] = fhir.Encounter(sampleVisit(st), parts, false)
	}
	for name, r := range resources {
		t.Run(name, func(t *testing.T) {
			out, err := c.Encode(r)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			back, err := c.Decode(out)
			if err != nil {
				t.Fatalf("the emitted resource does not read back: %v\n%s", err, out)
			}
			again, err := c.EncodeContained(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, again) {
				t.Errorf("round trip changed the resource:\n%s\n%s", out, again)
			}
		})
	}
}

// TestFHIRBadInput: what the library refuses, Decode refuses, with the
// FHIR path and the rule but never the value read.
func TestFHIRBadInput(t *testing.T) {
	c := codec(t)
	for name, body := range map[string]string{
		"not JSON":         `{"resourceType": "Appointment",`,
		"no resourceType":  `{"status": "booked"}`,
		"unknown type":     `{"resourceType": "Spaceship"}`,
		"unknown field":    `{"resourceType": "Appointment", "status": "booked", "participant": [{"status": "accepted"}], "colour": "red"}`,
		"bad code":         `{"resourceType": "Appointment", "status": "SECRET-VALUE", "participant": [{"status": "accepted"}]}`,
		"bad instant":      `{"resourceType": "Appointment", "status": "booked", "start": "tomorrow", "participant": [{"status": "accepted"}]}`,
		"missing required": `{"resourceType": "Appointment", "status": "booked"}`,
		"wrong reference": `{"resourceType": "Encounter", "status": "planned", "class": {"code": "VR"},
			"subject": {"reference": "Appointment/1"}}`,
		"too deep": `{"resourceType": "Patient", "extension": [` + strings.Repeat(`{"url": "http://x.test", "extension": [`, 40) +
			strings.Repeat(`]}`, 40) + `]}`,
		"too large": `{"resourceType": "Patient", "id": "` + strings.Repeat("a", fhir.MaxBody) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Decode([]byte(body))
			if !errors.Is(err, fhir.ErrInvalid) {
				t.Fatalf("Decode = %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "SECRET-VALUE") {
				t.Errorf("the error quotes the input: %v", err)
			}
		})
	}
}
