package token

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
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
	tag, err := b.pool.Exec(ctx, `INSERT INTO join_tokens (jti, visit_id, participant_id, role, expires_at, used_at)
		VALUES ($1, $2, $3, $4, to_timestamp($5), now())
		ON CONFLICT (jti) DO UPDATE SET used_at = now() WHERE join_tokens.used_at IS NULL`,
		c.ID, string(c.Visit), string(c.Participant), string(c.Role), c.ExpiresAt)
	if err != nil {
		return fmt.Errorf("token: burn: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrUsed
	}
	return nil
}
