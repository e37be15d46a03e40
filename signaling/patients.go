package signaling

import (
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/store"
)

type patientRequest struct {
	Name        string `json:"name"`
	DateOfBirth string `json:"date_of_birth"`
	Email       string `json:"email"`
	Phone       string `json:"phone"`
	State       string `json:"state"`
}

var (
	phonePattern = regexp.MustCompile(`^[0-9+()\-. ]{0,40}$`)
	// US states, DC and territories: breach notices are counted per state.
	usStates = map[string]bool{}
)

func init() {
	for _, s := range strings.Fields(`AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ
		NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI`) {
		usStates[s] = true
	}
}

// parseDOB accepts YYYY-MM-DD between 1900 and today.
func parseDOB(s string, now time.Time) (time.Time, bool) {
	d, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil || d.Year() < 1900 || d.After(now) {
		return time.Time{}, false
	}
	return d, true
}

func (r *patientRequest) validate(now time.Time) *httpx.Error {
	r.Name, r.Email, r.Phone = strings.TrimSpace(r.Name), strings.TrimSpace(r.Email), strings.TrimSpace(r.Phone)
	r.State = strings.ToUpper(strings.TrimSpace(r.State))
	switch {
	case r.Name == "" || utf8.RuneCountInString(r.Name) > 200:
		return httpx.E(httpx.KindInvalid, "bad_name", "Enter the patient's name (up to 200 characters).")
	case !func() bool { _, ok := parseDOB(r.DateOfBirth, now); return ok }():
		return httpx.E(httpx.KindInvalid, "bad_date_of_birth", "Enter the date of birth as YYYY-MM-DD.")
	case r.Email != "" && !validEmail(r.Email):
		return httpx.E(httpx.KindInvalid, "bad_email", "Enter a valid email address or leave it empty.")
	case !phonePattern.MatchString(r.Phone):
		return httpx.E(httpx.KindInvalid, "bad_phone", "Enter a phone number with digits, spaces and + ( ) - . only.")
	case r.State != "" && !usStates[r.State]:
		return httpx.E(httpx.KindInvalid, "bad_state", "Enter the two-letter state of residence, e.g. CA.")
	}
	return nil
}

func (s *Server) patientEvent(c *gin.Context, action, patient string) audit.Event {
	p := principal(c)
	return audit.Event{ActorID: p.ActorID(), ActorRole: string(p.Kind), Action: action, ResourceType: "patient",
		ResourceID: patient, PatientID: patient, Outcome: audit.Success, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
}

// errAuditDown refuses access when the audit log cannot record it.
func errAuditDown(err error) error {
	return httpx.Wrap(httpx.KindUnavailable, "audit_unavailable", "The audit log cannot be written; access is refused.", err)
}

func (s *Server) createPatient(c *gin.Context) {
	ctx := c.Request.Context()
	var req patientRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if e := req.validate(s.p.Now()); e != nil {
		s.abort(c, e)
		return
	}
	var out store.Patient
	ev := s.patientEvent(c, actionPatientCreate, "")
	err := s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		out, err = store.CreatePatient(ctx, tx, store.Patient{Name: req.Name, DateOfBirth: req.DateOfBirth, Email: req.Email,
			Phone: req.Phone, State: req.State, CreatedBy: principal(c).UserID})
		ev.PatientID, ev.ResourceID = out.ID, out.ID
		return err
	})
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusCreated, out)
}

// findPatients searches the provider's patients by name. Each patient in
// the answer is a view of patient data: one audit entry per patient, all
// committed together before the list leaves (shown.go).
func (s *Server) findPatients(c *gin.Context) {
	ctx := c.Request.Context()
	q := c.Query("q")
	if len(q) > 200 {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_query", "The search is too long."))
		return
	}
	list, err := store.FindPatients(ctx, s.p.DB, principal(c).UserID, q, 50)
	if err != nil {
		s.abort(c, err)
		return
	}
	base := s.patientEvent(c, actionPatientView, "")
	base.Reason = "search"
	found := make([]string, len(list))
	for i, p := range list {
		found[i] = p.ID
	}
	// Nothing shown, nothing to record: the search text itself may be a
	// name and never goes into the trail.
	if err := s.p.DB.Audit().AppendAll(ctx, shownEvents(base, found)); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"patients": list})
}

func (s *Server) getPatient(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("patient_id")
	p, err := store.PatientByID(ctx, s.p.DB, id)
	if err != nil {
		s.abort(c, err)
		return
	}
	if err := s.p.DB.Audit().Append(ctx, s.patientEvent(c, actionPatientView, id)); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	c.JSON(http.StatusOK, p)
}
