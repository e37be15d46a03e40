// Package incidents is breach response: an admin opens an incident when a
// breach is suspected (its notice deadline runs from discovery), works out
// its scope — the patients and recordings one actor reached, or every
// recording sealed under one key — and moves it to notified or closed.
// Each change commits with its audit entry (store.DB.Change); the SQL is
// internal/store's (incidents.go).
package incidents

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit actions.
const (
	ActionCreate = "incident.create"
	ActionStatus = "incident.status"
	ActionScope  = "incident.scope"
)

// Limits and statuses.
const (
	MaxTitle       = 200
	MaxDescription = 10000
	MaxActorID     = 128
	MaxKEKID       = 64
	// clockSkew lets a discovery time a little ahead of this server's clock.
	clockSkew = time.Minute
)

// Statuses an incident moves between.
var statuses = map[string]bool{"open": true, "notified": true, "closed": true}

var (
	ErrBadIncident   = errors.New("incidents: title or description out of bounds")
	ErrBadDiscovered = errors.New("incidents: discovery time missing or in the future")
	ErrBadStatus     = errors.New("incidents: unknown status")
	ErrBadScope      = errors.New("incidents: give either an actor or a key")
	ErrBadRange      = errors.New("incidents: scope range empty")
)

// Service opens, scopes and closes incidents. It holds no state of its own.
type Service struct{ store.Env }

// New returns a Service on env.
func New(env store.Env) *Service { return &Service{env} }

// Report opens an incident.
type Report struct {
	Title, Description string
	// DiscoveredAt is when the breach was discovered (zero: not given).
	DiscoveredAt time.Time
	By           ids.UserID
	// Event carries the audit entry's actor fields.
	Event audit.Event
}

// Create opens an incident; its notice deadline runs from discovery.
func (s *Service) Create(ctx context.Context, r Report) (store.Incident, error) {
	r.Title = strings.TrimSpace(r.Title)
	switch {
	case r.Title == "" || len(r.Title) > MaxTitle || len(r.Description) > MaxDescription:
		return store.Incident{}, ErrBadIncident
	case r.DiscoveredAt.IsZero() || r.DiscoveredAt.After(s.Now().Add(clockSkew)):
		return store.Incident{}, ErrBadDiscovered
	}
	var inc store.Incident
	ev := r.Event
	ev.Action, ev.ResourceType, ev.Outcome = ActionCreate, "incident", audit.Success
	err := s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		inc, err = store.CreateIncident(ctx, tx, r.Title, r.Description, r.DiscoveredAt, r.By)
		ev.ResourceID = inc.ID
		return err
	})
	return inc, err
}

// List returns incidents, open first, by deadline.
func (s *Service) List(ctx context.Context) ([]store.Incident, error) {
	return store.Incidents(ctx, s.DB)
}

// SetStatus moves incident id to notified or closed, or reopens it.
func (s *Service) SetStatus(ctx context.Context, id, status string, actor audit.Event) error {
	if !statuses[status] {
		return ErrBadStatus
	}
	ev := actor
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome, ev.Reason = ActionStatus, "incident", id, audit.Success, status
	return s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		return store.SetIncidentStatus(ctx, tx, id, status)
	})
}

// Scope answers q for incident id: the patients and recordings the breach
// may have touched. A zero From or To (not given, or no time) is an empty
// range. The caller audits what it shows before it shows it.
func (s *Service) Scope(ctx context.Context, id string, q store.ScopeQuery) (store.Incident, store.Scope, error) {
	inc, err := store.IncidentByID(ctx, s.DB, id)
	if err != nil {
		return store.Incident{}, store.Scope{}, err
	}
	if (q.ActorID == "") == (q.KEKID == "") || len(q.ActorID) > MaxActorID || len(q.KEKID) > MaxKEKID {
		return inc, store.Scope{}, ErrBadScope
	}
	if q.From.IsZero() || !q.To.After(q.From) {
		return inc, store.Scope{}, ErrBadRange
	}
	sc, err := store.BreachScope(ctx, s.DB, q)
	return inc, sc, err
}
