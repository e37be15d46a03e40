// Package patients holds the clinic's patient records as staff reach
// them: creating a record (its rules), finding a provider's patients by
// name and reading one — each read recorded in the audit trail before the
// data leaves — and the rule every view that shows patients follows
// (shown.go).
package patients

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/phi"
	"github.com/openvisit/openvisit/internal/store"
)

// Limits.
const (
	MaxName  = 200 // characters
	MaxQuery = 200 // bytes of a search
	// SearchLimit is how many patients a search shows at most.
	SearchLimit = 50
)

// Refusals of a patient record or a search.
var (
	ErrBadName  = errors.New("patients: name missing or too long")
	ErrBadDOB   = errors.New("patients: bad date of birth")
	ErrBadEmail = errors.New("patients: bad email")
	ErrBadPhone = errors.New("patients: bad phone")
	ErrBadState = errors.New("patients: unknown state")
	// ErrBadMRN: a medical record number is "system|value", both present,
	// printable and phi.MaxMRN bytes at most.
	ErrBadMRN   = errors.New("patients: bad medical record number")
	ErrBadQuery = errors.New("patients: search too long")
	// ErrBadLookup: an admin's lookup needs a name and a date of birth.
	ErrBadLookup = errors.New("patients: a lookup needs a name and a date of birth")
)

var (
	phonePattern = regexp.MustCompile(`^[0-9+()\-. ]{0,40}$`)
	// usStates are the US states, DC and territories: breach notices are
	// counted per state.
	usStates = func() map[string]bool {
		m := map[string]bool{}
		for _, s := range strings.Fields(`AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ
		NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI`) {
			m[s] = true
		}
		return m
	}()
)

// ParseDOB accepts a date of birth as YYYY-MM-DD between 1900 and now.
func ParseDOB(s string, now time.Time) (time.Time, bool) {
	d, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil || d.Year() < 1900 || d.After(now) {
		return time.Time{}, false
	}
	return d, true
}

// Check trims p's fields, upper-cases its state, and checks them at now:
// a name, a date of birth, and an email, phone and state that are either
// empty or plausible.
func Check(p *store.Patient, now time.Time) error {
	p.Name, p.Email, p.Phone = strings.TrimSpace(p.Name), strings.TrimSpace(p.Email), strings.TrimSpace(p.Phone)
	p.State = strings.ToUpper(strings.TrimSpace(p.State))
	if sys, val, ok := strings.Cut(p.MRN, "|"); ok {
		p.MRN = phi.NormaliseMRN(sys, val)
	}
	_, dobOK := ParseDOB(p.DateOfBirth, now)
	switch {
	case p.Name == "" || utf8.RuneCountInString(p.Name) > MaxName:
		return ErrBadName
	case !dobOK:
		return ErrBadDOB
	case p.Email != "" && !accounts.ValidEmail(p.Email):
		return ErrBadEmail
	case !phonePattern.MatchString(p.Phone):
		return ErrBadPhone
	case p.State != "" && !usStates[p.State]:
		return ErrBadState
	case p.MRN != "" && !validMRN(p.MRN):
		return ErrBadMRN
	}
	return nil
}

// validMRN: "system|value", both non-empty after trimming, printable, and
// already normalised (phi.NormaliseMRN).
func validMRN(s string) bool {
	sys, val, ok := strings.Cut(s, "|")
	return ok && len(s) <= phi.MaxMRN && utf8.ValidString(s) && sys != "" && val != "" &&
		phi.NormaliseMRN(sys, val) == s && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// Service creates, finds and reads patient records. It holds no state of
// its own.
type Service struct{ store.Env }

// New returns a Service on env.
func New(env store.Env) *Service { return &Service{env} }

// Create stores a new patient record created by p.CreatedBy, checked
// (Check), with its audit entry ev (actor and source), which names it.
func (s *Service) Create(ctx context.Context, p store.Patient, ev audit.Event) (store.Patient, error) {
	if err := Check(&p, s.Now()); err != nil {
		return store.Patient{}, err
	}
	var out store.Patient
	err := s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		out, err = store.CreatePatient(ctx, tx, p)
		ev.PatientID, ev.ResourceID = out.ID, out.ID
		return err
	})
	return out, err
}

// Search finds provider's patients by name. Each patient in the answer is
// a view of patient data: one entry of base per patient, recorded before
// the list is returned (RecordShown); a search that finds nobody leaves
// no entry.
func (s *Service) Search(ctx context.Context, provider ids.UserID, q string, base audit.Event) ([]store.Patient, error) {
	if len(q) > MaxQuery {
		return nil, ErrBadQuery
	}
	list, err := store.FindPatients(ctx, s.DB, provider, q, SearchLimit)
	if err != nil {
		return nil, err
	}
	return ShownList(ctx, s.DB.Audit(), base, list, func(p store.Patient) string { return p.ID }, NoneUnrecorded)
}

// Lookup finds any patient by name and date of birth — the admin's way to
// a patient's recordings and access report — through the blind indexes
// (store.LookupPatients: every name word a prefix of one of theirs, the
// date exact). Each patient in the answer is audited as base before the
// list is returned, as a search is.
func (s *Service) Lookup(ctx context.Context, name, dob string, base audit.Event) ([]store.Patient, error) {
	d, ok := ParseDOB(dob, s.Now())
	if strings.TrimSpace(name) == "" || len(name) > MaxQuery || !ok {
		return nil, ErrBadLookup
	}
	list, err := store.LookupPatients(ctx, s.DB, name+" "+d.Format("2006-01-02"), SearchLimit)
	if err != nil {
		return nil, err
	}
	return ShownList(ctx, s.DB.Audit(), base, list, func(p store.Patient) string { return p.ID }, NoneUnrecorded)
}

// Get reads patient id, recording ev before the record is returned.
func (s *Service) Get(ctx context.Context, id string, ev audit.Event) (store.Patient, error) {
	p, err := store.PatientByID(ctx, s.DB, id)
	if err != nil {
		return store.Patient{}, err
	}
	if err := s.DB.Audit().Append(ctx, ev); err != nil {
		return store.Patient{}, fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	return p, nil
}
