package fhir

import (
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	apb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/appointment_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	epb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/encounter_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
	ppb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Extensions OpenVisit defines.
const (
	extBase = "https://openvisit.org/fhir/StructureDefinition/"
	// ExtInviteURL carries the patient's one-time invite link on the
	// Appointment a create answers (and only there: the link is a secret).
	ExtInviteURL = extBase + "invite-url"
	// ExtRecorded says on an Encounter whether the visit was recorded.
	ExtRecorded = extBase + "recorded"
)

func str(s string) *dpb.String { return &dpb.String{Value: s} }
func uri(s string) *dpb.Uri    { return &dpb.Uri{Value: s} }

func instant(t time.Time) *dpb.Instant {
	return &dpb.Instant{ValueUs: t.UnixMicro(), Timezone: "UTC", Precision: dpb.Instant_SECOND}
}

func dateTime(t *time.Time) *dpb.DateTime {
	if t == nil {
		return nil
	}
	return &dpb.DateTime{ValueUs: t.UnixMicro(), Timezone: "UTC", Precision: dpb.DateTime_SECOND}
}

func patientRef(id string) *dpb.Reference {
	return &dpb.Reference{Reference: &dpb.Reference_PatientId{PatientId: &dpb.ReferenceId{Value: id}}}
}

func practitionerRef(id ids.UserID) *dpb.Reference {
	return &dpb.Reference{Reference: &dpb.Reference_PractitionerId{PractitionerId: &dpb.ReferenceId{Value: string(id)}}}
}

// Patient is a patient record as FHIR Patient: the medical record number
// as its identifier, the name as text, birth date, email, phone, state.
func Patient(p store.Patient) *ppb.Patient {
	out := &ppb.Patient{Id: &dpb.Id{Value: p.ID}, Name: []*dpb.HumanName{{Text: str(p.Name)}}}
	if sys, val, ok := cutMRN(p.MRN); ok {
		out.Identifier = []*dpb.Identifier{{System: uri(sys), Value: str(val)}}
	}
	if d, err := time.Parse("2006-01-02", p.DateOfBirth); err == nil {
		out.BirthDate = &dpb.Date{ValueUs: d.UnixMicro(), Timezone: "UTC", Precision: dpb.Date_DAY}
	}
	for _, t := range []struct {
		sys cpb.ContactPointSystemCode_Value
		v   string
	}{{cpb.ContactPointSystemCode_EMAIL, p.Email}, {cpb.ContactPointSystemCode_PHONE, p.Phone}} {
		if t.v != "" {
			out.Telecom = append(out.Telecom, &dpb.ContactPoint{System: &dpb.ContactPoint_SystemCode{Value: t.sys}, Value: str(t.v)})
		}
	}
	if p.State != "" {
		out.Address = []*dpb.Address{{State: str(p.State), Country: str("US")}}
	}
	return out
}

// appointmentStatus maps a visit's status to Appointment.status.
var appointmentStatus = map[string]cpb.AppointmentStatusCode_Value{
	store.StatusScheduled:  cpb.AppointmentStatusCode_BOOKED,
	store.StatusWaiting:    cpb.AppointmentStatusCode_ARRIVED,
	store.StatusInProgress: cpb.AppointmentStatusCode_ARRIVED,
	store.StatusCompleted:  cpb.AppointmentStatusCode_FULFILLED,
	store.StatusCancelled:  cpb.AppointmentStatusCode_CANCELLED,
	store.StatusNoShow:     cpb.AppointmentStatusCode_NOSHOW,
}

// Appointment is a scheduled visit as FHIR Appointment: its patient and
// provider as participants, its window, its status. inviteURL, when set,
// rides in an extension (the answer to a create).
func Appointment(v store.ScheduledVisit, inviteURL string) *apb.Appointment {
	out := &apb.Appointment{
		Id:      &dpb.Id{Value: string(v.ID)},
		Status:  &apb.Appointment_StatusCode{Value: appointmentStatus[v.Status]},
		Created: dateTime(&v.CreatedAt),
	}
	if out.Status.Value == cpb.AppointmentStatusCode_INVALID_UNINITIALIZED {
		out.Status.Value = cpb.AppointmentStatusCode_BOOKED
	}
	if v.ScheduledStart != nil && v.ScheduledEnd != nil {
		out.Start, out.End = instant(*v.ScheduledStart), instant(*v.ScheduledEnd)
	}
	accepted := &apb.Appointment_Participant_StatusCode{Value: cpb.ParticipationStatusCode_ACCEPTED}
	required := &apb.Appointment_Participant_RequiredCode{Value: cpb.ParticipantRequiredCode_REQUIRED}
	if v.PatientID != "" {
		out.Participant = append(out.Participant, &apb.Appointment_Participant{Actor: patientRef(v.PatientID), Required: required, Status: accepted})
	}
	if v.ProviderID != "" {
		out.Participant = append(out.Participant, &apb.Appointment_Participant{Actor: practitionerRef(v.ProviderID), Required: required, Status: accepted})
	}
	if inviteURL != "" {
		out.Extension = []*dpb.Extension{{Url: uri(ExtInviteURL),
			Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Url{Url: &dpb.Url{Value: inviteURL}}}}}
	}
	return out
}

// encounterStatus maps a visit's status to Encounter.status.
var encounterStatus = map[string]cpb.EncounterStatusCode_Value{
	store.StatusScheduled:  cpb.EncounterStatusCode_PLANNED,
	store.StatusWaiting:    cpb.EncounterStatusCode_ARRIVED,
	store.StatusInProgress: cpb.EncounterStatusCode_IN_PROGRESS,
	store.StatusCompleted:  cpb.EncounterStatusCode_FINISHED,
	store.StatusCancelled:  cpb.EncounterStatusCode_CANCELLED,
	store.StatusNoShow:     cpb.EncounterStatusCode_CANCELLED,
}

// Encounter is what happened in a visit as FHIR Encounter: its status,
// when it ran, the patient as subject, the staff who took part as
// participants (each with when they were in the call), the Appointment it
// fulfils, and whether it was recorded.
func Encounter(v store.ScheduledVisit, parts []store.Participant, recorded bool) *epb.Encounter {
	out := &epb.Encounter{
		Id:     &dpb.Id{Value: string(v.ID)},
		Status: &epb.Encounter_StatusCode{Value: encounterStatus[v.Status]},
		// A video visit: the HL7 v3 ActCode "virtual".
		ClassValue: &dpb.Coding{System: uri("http://terminology.hl7.org/CodeSystem/v3-ActCode"), Code: &dpb.Code{Value: "VR"},
			Display: str("virtual")},
		Appointment: []*dpb.Reference{{Reference: &dpb.Reference_AppointmentId{AppointmentId: &dpb.ReferenceId{Value: string(v.ID)}}}},
		Extension: []*dpb.Extension{{Url: uri(ExtRecorded),
			Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Boolean{Boolean: &dpb.Boolean{Value: recorded}}}}},
	}
	if out.Status.Value == cpb.EncounterStatusCode_INVALID_UNINITIALIZED {
		out.Status.Value = cpb.EncounterStatusCode_UNKNOWN
	}
	if v.PatientID != "" {
		out.Subject = patientRef(v.PatientID)
	}
	if v.StartedAt != nil {
		out.Period = &dpb.Period{Start: dateTime(v.StartedAt), End: dateTime(v.EndedAt)}
	}
	for _, p := range parts {
		if p.UserID == "" {
			continue // the patient is the subject; guests have no FHIR identity here
		}
		ep := &epb.Encounter_Participant{Individual: practitionerRef(p.UserID), Type: []*dpb.CodeableConcept{participationType(p.Role)}}
		if p.JoinedAt != nil {
			ep.Period = &dpb.Period{Start: dateTime(p.JoinedAt), End: dateTime(p.LeftAt)}
		}
		out.Participant = append(out.Participant, ep)
	}
	return out
}

// participationType codes a participant's role (HL7 v3
// ParticipationType): the visit's provider is the primary performer,
// other staff participants.
func participationType(role string) *dpb.CodeableConcept {
	code, display := "PART", "Participation"
	if role == "provider" {
		code, display = "PPRF", "primary performer"
	}
	return &dpb.CodeableConcept{Coding: []*dpb.Coding{{System: uri("http://terminology.hl7.org/CodeSystem/v3-ParticipationType"),
		Code: &dpb.Code{Value: code}, Display: str(display)}}, Text: str(role)}
}

// Outcome is an OperationOutcome with one issue.
func Outcome(severity cpb.IssueSeverityCode_Value, code cpb.IssueTypeCode_Value, diagnostics string) *oopb.OperationOutcome {
	return &oopb.OperationOutcome{Issue: []*oopb.OperationOutcome_Issue{{
		Severity:    &oopb.OperationOutcome_Issue_SeverityCode{Value: severity},
		Code:        &oopb.OperationOutcome_Issue_CodeType{Value: code},
		Diagnostics: str(diagnostics),
	}}}
}

// Searchset is a search's answer: a Bundle of the matches, each with its
// full URL under base (…/fhir/R4).
func Searchset(base string, now time.Time, entries []*bcrpb.ContainedResource, urls []string) *bcrpb.Bundle {
	b := &bcrpb.Bundle{
		Type:      &bcrpb.Bundle_TypeCode{Value: cpb.BundleTypeCode_SEARCHSET},
		Timestamp: instant(now),
		Total:     &dpb.UnsignedInt{Value: uint32(len(entries))},
	}
	for i, e := range entries {
		b.Entry = append(b.Entry, &bcrpb.Bundle_Entry{FullUrl: uri(base + "/" + urls[i]), Resource: e,
			Search: &bcrpb.Bundle_Entry_Search{Mode: &bcrpb.Bundle_Entry_Search_ModeCode{Value: cpb.SearchEntryModeCode_MATCH}}})
	}
	return b
}

// Contained wraps a resource for a Bundle entry.
func ContainedAppointment(a *apb.Appointment) *bcrpb.ContainedResource {
	return &bcrpb.ContainedResource{OneofResource: &bcrpb.ContainedResource_Appointment{Appointment: a}}
}

// ContainedPatient wraps a Patient for a Bundle entry.
func ContainedPatient(p *ppb.Patient) *bcrpb.ContainedResource {
	return &bcrpb.ContainedResource{OneofResource: &bcrpb.ContainedResource_Patient{Patient: p}}
}
