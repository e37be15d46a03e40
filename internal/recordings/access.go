package recordings

import (
	"context"
	"fmt"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Viewer is who asks for a stored recording.
type Viewer struct {
	Kind   access.Kind
	UserID ids.UserID
}

// Access finds recording id and checks that v may reach it: an admin, the
// visit's provider, or a provider with a live break-glass grant (then
// breakGlass is true, and the access is flagged in its audit entry).
// Anyone else gets ErrNoAccess; a recording that does not exist,
// store.ErrNotFound.
func (s *Service) Access(ctx context.Context, id string, v Viewer) (rec store.Recording, breakGlass bool, err error) {
	rec, err = store.RecordingByID(ctx, s.DB, id)
	if err != nil {
		return rec, false, err
	}
	switch v.Kind {
	case access.Admin:
		return rec, false, nil
	case access.Provider:
		member, bg, err := store.VisitRelation(ctx, s.DB, v.UserID, rec.VisitID, s.Now())
		if err != nil {
			return rec, false, fmt.Errorf("recordings: access: %w", err)
		}
		if member || bg {
			return rec, !member && bg, nil
		}
	}
	return rec, false, ErrNoAccess
}

// List returns the recordings f selects — a provider's own visits' only —
// once the listing is audited (ev, with the count as its reason), each
// with its place in its joined recording (JoinPieces).
func (s *Service) List(ctx context.Context, f store.RecordingFilter, v Viewer, ev audit.Event) ([]Listed, error) {
	f.Now = s.Now()
	if v.Kind == access.Provider {
		f.Provider = v.UserID
	}
	recs, err := store.ListRecordings(ctx, s.DB, f)
	if err != nil {
		return nil, err
	}
	ev.Reason = fmt.Sprintf("results=%d", len(recs))
	if err := s.DB.Audit().Append(ctx, ev); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuditDown, err)
	}
	return listed(recs), nil
}

// Series returns rec's place in its joined recording and that recording's
// pieces in order. The caller has checked access to rec (Access); the
// pieces are of the same visit and participant, so the same rule admits
// them.
func (s *Service) Series(ctx context.Context, rec store.Recording) (Piece, []SeriesPart, error) {
	visit, err := store.ListRecordings(ctx, s.DB, store.RecordingFilter{VisitID: rec.VisitID, Now: s.Now(), Limit: 500})
	if err != nil {
		return Piece{}, nil, err
	}
	p, parts := SeriesOf(rec, visit)
	return p, parts, nil
}
