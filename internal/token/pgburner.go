package token

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/store"
)

// PGBurner burns token IDs in PostgreSQL's join_tokens table, so a token
// stays used across a node restart and however many processes verify it.
type PGBurner struct {
	pool *pgxpool.Pool
}

// NewPGBurner returns a Burner backed by pool.
func NewPGBurner(pool *pgxpool.Pool) *PGBurner { return &PGBurner{pool: pool} }

// Burn implements Burner. The row may exist already (minted by the control
// plane) or not (minted elsewhere); either way only one Burn wins.
func (b *PGBurner) Burn(ctx context.Context, c Claims) error {
	used, err := store.BurnJoinToken(ctx, b.pool, store.NewJoinToken{
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
