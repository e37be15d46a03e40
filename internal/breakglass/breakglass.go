// Package breakglass is emergency access: a provider opens a visit that is
// not theirs, for a limited time, with a written reason. The grant commits
// with its audit entry and an alert for admins; another admin reviews it
// (the no-self-review rule is internal/review's). Access checks honour
// live grants through store.VisitRelation (internal/access).
package breakglass

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit action of a grant (a review is review.ActionBreakReview).
const ActionGrant = "break_glass.grant"

// A reason is this long, in characters: enough to say why, short of a
// clinical note.
const (
	MinReason = 20
	MaxReason = 2000
)

var (
	// ErrBadReason: the reason is missing, too short or too long.
	ErrBadReason = errors.New("breakglass: reason must be 20 to 2000 characters")
	// ErrNotNeeded: the visit is the provider's own.
	ErrNotNeeded = errors.New("breakglass: own visit")
)

// Params configure a Service.
type Params struct {
	store.Env
	// Duration is how long a grant lasts.
	Duration time.Duration
}

// Service grants, lists and reviews emergency access. It holds no state of
// its own.
type Service struct{ p Params }

// New returns a Service.
func New(p Params) *Service { return &Service{p: p} }

// Request asks for emergency access to Visit.
type Request struct {
	User   ids.UserID
	Visit  ids.VisitID
	Reason string
	// Event carries the audit entry's actor fields (actor, role, IP, user
	// agent); action and resource are set here.
	Event audit.Event
}

// Grant records a grant for r, its audit entry and its alert in one
// transaction. The reason stays in break_glass (it may describe a
// patient); the audit entry and the alert carry the grant's ID only.
func (s *Service) Grant(ctx context.Context, r Request) (store.BreakGlass, error) {
	reason := strings.TrimSpace(r.Reason)
	if n := utf8.RuneCountInString(reason); n < MinReason || len(reason) > MaxReason {
		return store.BreakGlass{}, ErrBadReason
	}
	now := s.p.Now()
	ev := r.Event
	ev.Action, ev.ResourceType, ev.VisitID, ev.Outcome, ev.Reason = ActionGrant, "break_glass", string(r.Visit), audit.Success, "break-glass"
	var g store.BreakGlass
	err := s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		v, err := store.VisitByID(ctx, tx, r.Visit)
		if err != nil {
			return err
		}
		// The visit's provider and its guest providers have it already.
		member, _, err := store.VisitRelation(ctx, tx, r.User, r.Visit, now)
		if err != nil {
			return err
		}
		if v.ProviderID == r.User || member {
			return ErrNotNeeded
		}
		if g, err = store.GrantBreakGlass(ctx, tx, r.User, r.Visit, reason, now, s.p.Duration); err != nil {
			return err
		}
		ev.ResourceID = g.ID
		_, err = alerts.Raise(ctx, tx, alerts.KindBreakGlass, string(r.User),
			"emergency access grant "+g.ID+" to visit "+string(r.Visit), now)
		return err
	})
	return g, err
}

// List returns grants, unreviewed first, newest first.
func (s *Service) List(ctx context.Context) ([]store.BreakGlass, error) {
	return store.ListBreakGlass(ctx, s.p.DB, 500)
}

// Review marks a grant reviewed by r, unless it was granted to r.
func (s *Service) Review(ctx context.Context, r review.Reviewer, grant string) error {
	return review.ReviewBreakGlass(ctx, s.p.DB, r, grant, s.p.Now())
}
