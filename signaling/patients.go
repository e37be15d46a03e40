package signaling

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/patients"
	"github.com/openvisit/openvisit/internal/store"
)

type patientRequest struct {
	Name        string `json:"name"`
	DateOfBirth string `json:"date_of_birth"`
	Email       string `json:"email"`
	Phone       string `json:"phone"`
	State       string `json:"state"`
	// MRN is the EHR's medical record number, "system|value" (optional).
	MRN string `json:"mrn"`
}

func (s *Server) patientEvent(c *gin.Context, action, patient string) audit.Event {
	p := principal(c)
	return audit.Event{ActorID: p.ActorID(), ActorRole: p.AuditRole(), Action: action, ResourceType: "patient",
		ResourceID: patient, PatientID: patient, Outcome: audit.Success, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
}

// errAuditDown refuses access when the audit log cannot record it.
func errAuditDown(err error) error {
	return httpx.Wrap(httpx.KindUnavailable, "audit_unavailable", "The audit log cannot be written; access is refused.", err)
}

// patientService is the patient records' domain on this server's database.
func (s *Server) patientService() *patients.Service {
	return patients.New(s.env())
}

func (s *Server) createPatient(c *gin.Context) {
	var req patientRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	out, err := s.patientService().Create(c.Request.Context(), store.Patient{Name: req.Name, DateOfBirth: req.DateOfBirth,
		Email: req.Email, Phone: req.Phone, State: req.State, MRN: req.MRN, CreatedBy: principal(c).UserID},
		s.patientEvent(c, actionPatientCreate, ""))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusCreated, out)
}

// findPatients searches the provider's patients by name; each patient in
// the answer is audited before the list leaves (patients.Service.Search).
func (s *Server) findPatients(c *gin.Context) {
	base := s.patientEvent(c, actionPatientView, "")
	base.Reason = "search"
	list, err := s.patientService().Search(c.Request.Context(), principal(c).UserID, c.Query("q"), base)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"patients": list})
}

func (s *Server) getPatient(c *gin.Context) {
	id := c.Param("patient_id")
	p, err := s.patientService().Get(c.Request.Context(), id, s.patientEvent(c, actionPatientView, id))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// lookupPatients is the admin's lookup of any patient by name and date of
// birth (patients.Service.Lookup), for the Recordings and Audit pages; each
// patient in the answer is audited before the list leaves.
func (s *Server) lookupPatients(c *gin.Context) {
	base := s.patientEvent(c, actionPatientView, "")
	base.Reason = "admin lookup"
	list, err := s.patientService().Lookup(c.Request.Context(), c.Query("name"), c.Query("date_of_birth"), base)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"patients": list})
}
