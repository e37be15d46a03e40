package fhir

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	apb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/appointment_go_proto"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/phi"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/visits"
)

// Audit actions of the FHIR API (the actor is the machine client).
const (
	ActionPatientRead       = "fhir.patient.read"
	ActionPatientSearch     = "fhir.patient.search"
	ActionAppointmentCreate = "fhir.appointment.create"
	ActionAppointmentRead   = "fhir.appointment.read"
	ActionAppointmentSearch = "fhir.appointment.search"
	ActionAppointmentCancel = "fhir.appointment.cancel"
	ActionEncounterRead     = "fhir.encounter.read"
	ActionInviteCreate      = "invite.create" // as the provider page's
)

// SearchLimit is how many matches a search answers at most.
const SearchLimit = 100

// Refusals of the FHIR operations (signaling maps them to
// OperationOutcome with a status).
var (
	ErrNotFound = errors.New("fhir: no such resource")
	// ErrBadAppointment: an Appointment to create must be booked, with a
	// start and an end, one Patient and one Practitioner participant.
	ErrBadAppointment = errors.New("fhir: an appointment needs status booked, start, end, one Patient and one Practitioner")
	// ErrNotProvider: the Practitioner is not an active OpenVisit provider.
	ErrNotProvider = errors.New("fhir: the practitioner is not an active provider")
	// ErrBadSearch: a search parameter is missing or malformed.
	ErrBadSearch = errors.New("fhir: bad search parameters")
	// ErrOnlyCancel: an update may change an appointment's status to
	// cancelled and nothing else.
	ErrOnlyCancel = errors.New("fhir: only a change of status to cancelled is supported")
)

// Service runs the FHIR operations on the scheduling and invite domains.
// It holds no state of its own. Every operation is audited with the event
// its caller passes (the machine client as actor, the request's source).
type Service struct {
	Env       store.Env
	Scheduler *visits.Scheduler
}

// record appends ev for action on resource before the data leaves; a
// failure refuses the read.
func (s *Service) record(ctx context.Context, ev audit.Event, action, kind, id, patient string) error {
	ev.Action, ev.ResourceType, ev.ResourceID, ev.PatientID, ev.Outcome = action, kind, id, patient, audit.Success
	return s.Env.DB.Audit().Append(ctx, ev)
}

// ReadPatient reads patient id.
func (s *Service) ReadPatient(ctx context.Context, id string, ev audit.Event) (store.Patient, error) {
	p, err := store.PatientByID(ctx, s.Env.DB, id)
	if errors.Is(err, store.ErrNotFound) {
		return p, ErrNotFound
	}
	if err != nil {
		return p, err
	}
	return p, s.record(ctx, ev, ActionPatientRead, "patient", p.ID, p.ID)
}

// PatientsByIdentifier finds the patient whose medical record number is
// token ("system|value", FHIR's token search form).
func (s *Service) PatientsByIdentifier(ctx context.Context, token string, ev audit.Event) ([]store.Patient, error) {
	sys, val, ok := strings.Cut(token, "|")
	if !ok || strings.TrimSpace(sys) == "" || strings.TrimSpace(val) == "" || len(token) > phi.MaxMRN {
		return nil, ErrBadSearch
	}
	p, err := store.PatientByMRN(ctx, s.Env.DB, phi.NormaliseMRN(sys, val))
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.record(ctx, ev, ActionPatientSearch, "patient", "", "")
	}
	if err != nil {
		return nil, err
	}
	return []store.Patient{p}, s.record(ctx, ev, ActionPatientSearch, "patient", p.ID, p.ID)
}

// booking reads an Appointment to create.
func booking(a *apb.Appointment) (visits.Booking, error) {
	var b visits.Booking
	if a.GetStatus().GetValue() != cpb.AppointmentStatusCode_BOOKED || a.GetStart() == nil || a.GetEnd() == nil {
		return b, ErrBadAppointment
	}
	b.Start = time.UnixMicro(a.GetStart().GetValueUs()).UTC()
	b.Duration = time.UnixMicro(a.GetEnd().GetValueUs()).Sub(b.Start)
	for _, p := range a.GetParticipant() {
		switch r := p.GetActor().GetReference().(type) {
		case *dpb.Reference_PatientId:
			if b.Patient != "" {
				return b, ErrBadAppointment
			}
			b.Patient = r.PatientId.GetValue()
		case *dpb.Reference_PractitionerId:
			if b.Provider != "" {
				return b, ErrBadAppointment
			}
			b.Provider = ids.UserID(r.PractitionerId.GetValue())
		}
	}
	if b.Patient == "" || b.Provider == "" {
		return b, ErrBadAppointment
	}
	b.Reason = a.GetDescription().GetValue()
	return b, nil
}

// CreateAppointment books the visit a booked Appointment describes with
// its Practitioner (an active provider) and Patient, then issues the
// patient's one-time invite as the provider page does. It returns the
// visit and the invite's secret (the caller makes the link).
func (s *Service) CreateAppointment(ctx context.Context, a *apb.Appointment, ev audit.Event) (store.ScheduledVisit, string, error) {
	b, err := booking(a)
	if err != nil {
		return store.ScheduledVisit{}, "", err
	}
	u, err := store.UserByID(ctx, s.Env.DB, b.Provider, false)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Role != store.RoleProvider || u.DisabledAt != nil)) {
		return store.ScheduledVisit{}, "", ErrNotProvider
	}
	if err != nil {
		return store.ScheduledVisit{}, "", err
	}
	b.System = true
	b.Event = ev
	b.Event.Action, b.Event.ResourceType, b.Event.Outcome = ActionAppointmentCreate, "visit", audit.Success
	id, err := s.Scheduler.Schedule(ctx, b)
	if err != nil {
		return store.ScheduledVisit{}, "", err
	}
	var secret string
	var v store.ScheduledVisit
	iev := ev
	iev.Action, iev.ResourceType, iev.ResourceID, iev.VisitID, iev.PatientID, iev.Outcome =
		ActionInviteCreate, "visit", string(id), string(id), b.Patient, audit.Success
	err = s.Env.DB.Change(ctx, &iev, func(tx pgx.Tx) error {
		var err error
		if v, err = store.ScheduledVisitByID(ctx, tx, id, true); err != nil {
			return err
		}
		_, secret, err = store.CreateInvite(ctx, tx, id, s.Env.Now())
		return err
	})
	return v, secret, err
}

// visit reads visit id for action, audited before it leaves.
func (s *Service) visit(ctx context.Context, id, action, kind string, ev audit.Event) (store.ScheduledVisit, error) {
	v, err := store.ScheduledVisitByID(ctx, s.Env.DB, ids.VisitID(id), false)
	if errors.Is(err, store.ErrNotFound) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, err
	}
	ev.VisitID = string(v.ID)
	return v, s.record(ctx, ev, action, kind, string(v.ID), v.PatientID)
}

// ReadAppointment reads the visit id as an Appointment.
func (s *Service) ReadAppointment(ctx context.Context, id string, ev audit.Event) (store.ScheduledVisit, error) {
	return s.visit(ctx, id, ActionAppointmentRead, "visit", ev)
}

// SearchAppointments lists patient's visits starting in [from, to).
func (s *Service) SearchAppointments(ctx context.Context, patient string, from, to *time.Time, ev audit.Event) ([]store.ScheduledVisit, error) {
	patient = strings.TrimPrefix(patient, "Patient/")
	if !ids.Valid(patient) {
		return nil, ErrBadSearch
	}
	list, err := store.PatientSchedule(ctx, s.Env.DB, patient, from, to, SearchLimit)
	if err != nil {
		return nil, err
	}
	return list, s.record(ctx, ev, ActionAppointmentSearch, "patient", patient, patient)
}

// CancelAppointment cancels visit id (one that has not started), with its
// audit entry and change notice.
func (s *Service) CancelAppointment(ctx context.Context, id string, ev audit.Event) (store.ScheduledVisit, error) {
	if !ids.Valid(id) {
		return store.ScheduledVisit{}, ErrNotFound
	}
	var v store.ScheduledVisit
	ev.Action, ev.ResourceType, ev.ResourceID, ev.VisitID, ev.Outcome = ActionAppointmentCancel, "visit", id, id, audit.Success
	err := s.Env.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		if v, err = store.ScheduledVisitByID(ctx, tx, ids.VisitID(id), true); err != nil {
			return err
		}
		ev.PatientID = v.PatientID
		if err := visits.End(ctx, tx, v, store.StatusCancelled, s.Env.Now()); err != nil {
			return err
		}
		return store.NotifyVisit(ctx, tx, v.ID)
	})
	if errors.Is(err, store.ErrNotFound) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, err
	}
	v, err = store.ScheduledVisitByID(ctx, s.Env.DB, v.ID, false)
	return v, err
}

// EncounterView is what an Encounter shows of a visit.
type EncounterView struct {
	Visit        store.ScheduledVisit
	Participants []store.Participant
	Recorded     bool
}

// ReadEncounter reads what happened in visit id.
func (s *Service) ReadEncounter(ctx context.Context, id string, ev audit.Event) (EncounterView, error) {
	v, err := s.visit(ctx, id, ActionEncounterRead, "visit", ev)
	if err != nil {
		return EncounterView{}, err
	}
	parts, err := store.Participants(ctx, s.Env.DB, v.ID)
	if err != nil {
		return EncounterView{}, err
	}
	rec, err := store.VisitRecorded(ctx, s.Env.DB, v.ID)
	return EncounterView{Visit: v, Participants: parts, Recorded: rec}, err
}

func cutMRN(mrn string) (system, value string, ok bool) { return strings.Cut(mrn, "|") }
