// Package access decides who may call which route. One policy table names
// every route; one middleware enforces it. A route missing from the table is
// refused (and TestAuthorizationMatrix fails), so a new route cannot ship
// without a decision.
package access

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/openvisit/openvisit/internal/ids"
)

// Kind is what sort of principal made a request.
type Kind string

const (
	Anonymous Kind = "anonymous"
	// Patient is a patient admitted by a visit invite; bound to one visit.
	Patient  Kind = "patient"
	Provider Kind = "provider"
	Admin    Kind = "admin"
	// IdP is an identity provider's SCIM client, authenticated by its
	// bearer token (a machine client), never by a cookie.
	IdP Kind = "idp"
	// Client is an EHR's machine client calling FHIR, authenticated by an
	// access token from the token endpoint (internal/smart), never by a
	// cookie. Its scopes are checked by the handler.
	Client Kind = "client"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	Kind          Kind
	UserID        ids.UserID        // staff only
	VisitID       ids.VisitID       // patient only: the one visit they may reach
	ParticipantID ids.ParticipantID // patient only
	// Role is an invitee's role in the visit (patient, caregiver or
	// interpreter): every invitee is of Kind Patient (a session bound to
	// one visit); the role is what the audit trail records and what
	// NotFor rules refuse.
	Role        string
	SessionHash []byte // nil for anonymous
	CSRFToken   string // expected X-CSRF-Token for this session
	ClientID    string // IdP and Client only: the machine client
}

// IsStaff reports whether p is a signed-in provider or admin.
func (p Principal) IsStaff() bool { return p.Kind == Provider || p.Kind == Admin }

// AuditRole is the role the audit trail records for p: an invitee's role
// (caregiver, interpreter), else its kind.
func (p Principal) AuditRole() string {
	if p.Kind == Patient && p.Role != "" {
		return p.Role
	}
	return string(p.Kind)
}

// ActorID is the opaque ID the audit log records for p.
func (p Principal) ActorID() string {
	switch p.Kind {
	case Provider, Admin:
		return string(p.UserID)
	case Patient:
		return string(p.ParticipantID)
	case IdP, Client:
		return p.ClientID
	}
	return ""
}

// Rule is the decision for one route.
type Rule struct {
	// Allow lists the principal kinds that may call the route. Anonymous in
	// the list makes the route public.
	Allow []Kind
	// VisitParam names the route parameter holding a visit ID. When set, the
	// caller must belong to that visit (its provider, its admitted patient,
	// or a provider with an active break-glass grant) unless AdminAnyVisit
	// lets admins through; anyone else gets 404, as if it did not exist.
	VisitParam    string
	AdminAnyVisit bool
	// BreakGlassOK lets an active break-glass grant count as membership.
	BreakGlassOK bool
	// PatientParam names the route parameter holding a patient ID. When
	// set, a provider must have created the patient or have a visit with
	// them (admins pass when AdminAnyVisit is set); anyone else — an
	// invitee of any role included — gets 404.
	PatientParam string
	// NotFor lists invitee roles (Principal.Role) refused the route with
	// 404, as if it did not exist: an interpreter does not see the
	// patient's record.
	NotFor []string
	// NoCSRF exempts a state-changing route from the CSRF token (only for
	// routes that establish a session, where there is none yet; the Origin
	// check still applies).
	NoCSRF bool
	// Bearer: the route is called by machine clients with a bearer token
	// (Authorization header), and cookies are not read for it: with no
	// ambient credential there is nothing for CSRF or an Origin check to
	// protect, and a browser session never reaches it.
	Bearer bool
}

// Permits reports whether kind is allowed by r before any visit check.
func (r Rule) Permits(k Kind) bool { return slices.Contains(r.Allow, k) }

// Policy maps "METHOD /route/:pattern" to its rule.
type Policy map[string]Rule

// Key builds a policy key.
func Key(method, route string) string { return method + " " + route }

// Errors the middleware maps to responses.
var (
	ErrNoRule          = errors.New("access: route has no policy")
	ErrUnauthenticated = errors.New("access: sign-in required")
	ErrForbidden       = errors.New("access: forbidden")
	ErrNotFound        = errors.New("access: not found")
)

// Membership answers whether a principal belongs to a visit. The store
// implements it; tests may fake it.
type Membership interface {
	// VisitRelation reports how p relates to visit: member (provider of the
	// visit or its patient), breakGlass (an active emergency grant), or
	// neither. A visit that does not exist is neither.
	VisitRelation(ctx context.Context, p Principal, visit ids.VisitID) (member, breakGlass bool, err error)
	// PatientRelation reports whether a provider may see a patient record.
	PatientRelation(ctx context.Context, p Principal, patient string) (bool, error)
}

// Decision is the outcome of Check, with what the audit log needs.
type Decision struct {
	BreakGlass bool // access rests on an emergency grant: flag it
}

// Check decides one request. visit and patient are the values of the
// rule's VisitParam and PatientParam ("" when the rule has none).
func Check(ctx context.Context, rule Rule, p Principal, visit, patient string, m Membership) (Decision, error) {
	if p.Kind == Patient && (rule.PatientParam != "" || slices.Contains(rule.NotFor, p.Role)) {
		// A patient record, or a route closed to this invitee's role:
		// it answers as if it did not exist.
		return Decision{}, ErrNotFound
	}
	if !rule.Permits(p.Kind) {
		if p.Kind == Anonymous {
			return Decision{}, ErrUnauthenticated
		}
		return Decision{}, ErrForbidden
	}
	if rule.PatientParam != "" {
		if !ids.Valid(patient) {
			return Decision{}, ErrNotFound
		}
		if !(p.Kind == Admin && rule.AdminAnyVisit) {
			if p.Kind != Provider {
				return Decision{}, ErrNotFound
			}
			ok, err := m.PatientRelation(ctx, p, patient)
			if err != nil {
				return Decision{}, fmt.Errorf("access: patient relation: %w", err)
			}
			if !ok {
				return Decision{}, ErrNotFound
			}
		}
	}
	if rule.VisitParam == "" {
		return Decision{}, nil
	}
	if !ids.Valid(visit) {
		return Decision{}, ErrNotFound
	}
	if p.Kind == Admin && rule.AdminAnyVisit {
		return Decision{}, nil
	}
	if p.Kind == Patient {
		if p.VisitID != ids.VisitID(visit) {
			return Decision{}, ErrNotFound
		}
		return Decision{}, nil
	}
	member, bg, err := m.VisitRelation(ctx, p, ids.VisitID(visit))
	if err != nil {
		return Decision{}, fmt.Errorf("access: visit relation: %w", err)
	}
	switch {
	case member:
		return Decision{}, nil
	case bg && rule.BreakGlassOK:
		return Decision{BreakGlass: true}, nil
	}
	// Another visit's objects answer as if they did not exist.
	return Decision{}, ErrNotFound
}
