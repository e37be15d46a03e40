package signaling

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/openvisit/openvisit/internal/fhir"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/smart"
)

// The FHIR interactions: each checks its scope, calls one operation of
// internal/fhir and writes the resource it returns.

func (s *Server) fhirReadPatient(c *gin.Context) {
	if _, ok := s.fhirCaller(c, "Patient", smart.Read); !ok {
		return
	}
	p, err := s.fhirService().ReadPatient(c.Request.Context(), c.Param("patient_id"), s.clientEvent(c))
	if err != nil {
		s.abort(c, err)
		return
	}
	s.fhirWrite(c, http.StatusOK, fhir.Patient(p))
}

// onlyParams refuses a search with parameters other than allowed (FHIR
// servers must not silently ignore what they do not support... when the
// client asks strictly; refusing is the safe reading for a PHI search).
func onlyParams(c *gin.Context, allowed ...string) error {
	for k := range c.Request.URL.Query() {
		if !slices.Contains(allowed, k) {
			return fhir.ErrBadSearch
		}
	}
	return nil
}

func (s *Server) fhirSearchPatients(c *gin.Context) {
	if _, ok := s.fhirCaller(c, "Patient", smart.Read); !ok {
		return
	}
	id := c.Query("identifier")
	if err := onlyParams(c, "identifier"); err != nil || id == "" {
		s.abort(c, fhir.ErrBadSearch)
		return
	}
	list, err := s.fhirService().PatientsByIdentifier(c.Request.Context(), id, s.clientEvent(c))
	if err != nil {
		s.abort(c, err)
		return
	}
	entries, urls := make([]*bcrpb.ContainedResource, len(list)), make([]string, len(list))
	for i, p := range list {
		entries[i], urls[i] = fhir.ContainedPatient(fhir.Patient(p)), "Patient/"+p.ID
	}
	s.fhirWrite(c, http.StatusOK, fhir.Searchset(s.fhirBaseURL(), s.p.Now(), entries, urls))
}

func (s *Server) fhirCreateAppointment(c *gin.Context) {
	if _, ok := s.fhirCaller(c, "Appointment", smart.Write); !ok {
		return
	}
	r, ok := s.decodeFHIR(c)
	if !ok {
		return
	}
	a := r.GetAppointment()
	if a == nil {
		s.abort(c, httpx.E(httpx.KindInvalid, "wrong_resource", "The body must be an Appointment."))
		return
	}
	v, secret, err := s.fhirService().CreateAppointment(c.Request.Context(), a, s.clientEvent(c))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Header("Location", s.fhirBaseURL()+"/Appointment/"+string(v.ID))
	s.fhirWrite(c, http.StatusCreated, fhir.Appointment(v, InviteURL(s.p.PublicURL, secret)))
}

func (s *Server) fhirReadAppointment(c *gin.Context) {
	if _, ok := s.fhirCaller(c, "Appointment", smart.Read); !ok {
		return
	}
	v, err := s.fhirService().ReadAppointment(c.Request.Context(), c.Param("visit_id"), s.clientEvent(c))
	if err != nil {
		s.abort(c, err)
		return
	}
	s.fhirWrite(c, http.StatusOK, fhir.Appointment(v, ""))
}

func (s *Server) fhirSearchAppointments(c *gin.Context) {
	if _, ok := s.fhirCaller(c, "Appointment", smart.Read); !ok {
		return
	}
	from, to, err := dateRange(c.QueryArray("date"))
	if err == nil {
		err = onlyParams(c, "patient", "date")
	}
	if err != nil || c.Query("patient") == "" {
		s.abort(c, fhir.ErrBadSearch)
		return
	}
	list, err := s.fhirService().SearchAppointments(c.Request.Context(), c.Query("patient"), from, to, s.clientEvent(c))
	if err != nil {
		s.abort(c, err)
		return
	}
	entries, urls := make([]*bcrpb.ContainedResource, len(list)), make([]string, len(list))
	for i, v := range list {
		entries[i], urls[i] = fhir.ContainedAppointment(fhir.Appointment(v, "")), "Appointment/"+string(v.ID)
	}
	s.fhirWrite(c, http.StatusOK, fhir.Searchset(s.fhirBaseURL(), s.p.Now(), entries, urls))
}

// dateRange reads FHIR date parameters on the start (ge, gt, le, lt, eq;
// a day or an RFC 3339 instant) as a half-open range.
func dateRange(values []string) (from, to *time.Time, err error) {
	for _, v := range values {
		prefix := "eq"
		if len(v) > 2 && strings.ContainsAny(v[:1], "gle") {
			prefix, v = v[:2], v[2:]
		}
		t, day, err := parseFHIRDate(v)
		if err != nil {
			return nil, nil, fhir.ErrBadSearch
		}
		end := t.Add(day)
		switch prefix {
		case "ge":
			from = &t
		case "gt":
			from = &end
		case "lt":
			to = &t
		case "le":
			to = &end
		case "eq":
			from, to = &t, &end
		default:
			return nil, nil, fhir.ErrBadSearch
		}
	}
	return from, to, nil
}

// parseFHIRDate reads a day (its length is a day) or an instant (its
// length is a microsecond).
func parseFHIRDate(v string) (time.Time, time.Duration, error) {
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, 24 * time.Hour, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, time.Microsecond, err
}

// fhirUpdateAppointment: PUT of the Appointment with status cancelled
// cancels the visit; no other update is supported.
func (s *Server) fhirUpdateAppointment(c *gin.Context) {
	if _, ok := s.fhirCaller(c, "Appointment", smart.Write); !ok {
		return
	}
	r, ok := s.decodeFHIR(c)
	if !ok {
		return
	}
	a := r.GetAppointment()
	if a == nil || a.GetId().GetValue() != c.Param("visit_id") || a.GetStatus().GetValue() != cpb.AppointmentStatusCode_CANCELLED {
		s.abort(c, fhir.ErrOnlyCancel)
		return
	}
	s.cancelAppointment(c)
}

// fhirPatchAppointment: a JSON Patch replacing /status with "cancelled"
// cancels the visit; no other patch is supported.
func (s *Server) fhirPatchAppointment(c *gin.Context) {
	if _, ok := s.fhirCaller(c, "Appointment", smart.Write); !ok {
		return
	}
	var ops []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	body, err := io.ReadAll(c.Request.Body) // bounded by checkMachineBody
	if err == nil {
		err = json.Unmarshal(body, &ops)
	}
	if err != nil || len(ops) != 1 || ops[0].Op != "replace" || ops[0].Path != "/status" || ops[0].Value != "cancelled" {
		s.abort(c, fhir.ErrOnlyCancel)
		return
	}
	s.cancelAppointment(c)
}

func (s *Server) cancelAppointment(c *gin.Context) {
	v, err := s.fhirService().CancelAppointment(c.Request.Context(), c.Param("visit_id"), s.clientEvent(c))
	if err != nil {
		s.abort(c, err)
		return
	}
	s.fhirWrite(c, http.StatusOK, fhir.Appointment(v, ""))
}

func (s *Server) fhirReadEncounter(c *gin.Context) {
	if _, ok := s.fhirCaller(c, "Encounter", smart.Read); !ok {
		return
	}
	e, err := s.fhirService().ReadEncounter(c.Request.Context(), c.Param("visit_id"), s.clientEvent(c))
	if err != nil {
		s.abort(c, err)
		return
	}
	s.fhirWrite(c, http.StatusOK, fhir.Encounter(e.Visit, e.Participants, e.Recorded))
}
