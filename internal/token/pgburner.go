package token

import (
	"context"

	"github.com/openvisit/openvisit/internal/store"
)

// PGBurner burns token IDs in PostgreSQL's join_tokens table, so a token
// stays used across a node restart and however many processes verify it.
type PGBurner struct {
	db store.DBTX
}

// NewPGBurner returns a Burner backed by db (a *store.DB, or a pool).
func NewPGBurner(db store.DBTX) *PGBurner { return &PGBurner{db: db} }

// Burn implements Burner. The row may exist already (minted by the control
// plane) or not (minted elsewhere); either way only one Burn wins.
func (b *PGBurner) Burn(ctx context.Context, c Claims) error {
	used, err := store.BurnJoinToken(ctx, b.db, store.NewJoinToken{
		ID: c.ID, VisitID: string(c.Visit), Participant: string(c.Participant), Role: string(c.Role), ExpiresAt: c.Expiry(),
	})
	if err != nil {
		return err
	}
	if used {
		return ErrUsed
	}
	return nil
}
