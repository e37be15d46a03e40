package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// OIDCLink ties a staff user to a person at an identity provider: the
// issuer's configured ID and the ID token's subject.
type OIDCLink struct {
	Issuer, Subject string
	UserID          ids.UserID
	// RefreshTokenEnc is the sealed refresh token (nil: none kept).
	RefreshTokenEnc []byte
	VouchedAt       *time.Time
}

const oidcLinkColumns = `issuer, subject, user_id::text, refresh_token_enc, vouched_at`

func scanOIDCLink(r pgx.Row) (OIDCLink, error) {
	var l OIDCLink
	var uid string
	err := r.Scan(&l.Issuer, &l.Subject, &uid, &l.RefreshTokenEnc, &l.VouchedAt)
	l.UserID = ids.UserID(uid)
	return l, notFound(err)
}

// OIDCLinkBySubject finds the link of (issuer, subject); ErrNotFound if none.
func OIDCLinkBySubject(ctx context.Context, db DBTX, issuer, subject string) (OIDCLink, error) {
	return scanOIDCLink(db.QueryRow(ctx, `SELECT `+oidcLinkColumns+` FROM oidc_links WHERE issuer = $1 AND subject = $2`,
		issuer, subject))
}

// CreateOIDCLink links l.UserID to (l.Issuer, l.Subject). ErrConflict when
// the user already has a link to that issuer (another subject).
func CreateOIDCLink(ctx context.Context, db DBTX, l OIDCLink, now time.Time) error {
	_, err := db.Exec(ctx, `INSERT INTO oidc_links (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4)`,
		l.Issuer, l.Subject, string(l.UserID), now)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("store: create oidc link: %w", err)
	}
	return nil
}

// RecordOIDCVouch notes that the issuer vouched for the link's person now
// (a sign-in when signin is set, else a refresh), keeping the newest sealed
// refresh token (nil keeps the one stored).
func RecordOIDCVouch(ctx context.Context, db DBTX, issuer, subject string, tokenEnc []byte, signin bool, now time.Time) error {
	_, err := db.Exec(ctx, `UPDATE oidc_links SET vouched_at = $3,
		refresh_token_enc = COALESCE($4, refresh_token_enc),
		last_signin_at = CASE WHEN $5 THEN $3 ELSE last_signin_at END
		WHERE issuer = $1 AND subject = $2`, issuer, subject, now, tokenEnc, signin)
	if err != nil {
		return fmt.Errorf("store: record oidc vouch: %w", err)
	}
	return nil
}

// DropOIDCRefreshToken forgets the link's refresh token (its account was
// disabled: there is nothing left to ask the issuer).
func DropOIDCRefreshToken(ctx context.Context, db DBTX, issuer, subject string) error {
	_, err := db.Exec(ctx, `UPDATE oidc_links SET refresh_token_enc = NULL WHERE issuer = $1 AND subject = $2`, issuer, subject)
	if err != nil {
		return fmt.Errorf("store: drop oidc refresh token: %w", err)
	}
	return nil
}

// OIDCLinksToSweep lists issuer's links that hold a refresh token, of users
// not disabled, whose issuer last vouched before cutoff (or never).
func OIDCLinksToSweep(ctx context.Context, db DBTX, issuer string, cutoff time.Time) ([]OIDCLink, error) {
	rows, err := db.Query(ctx, `SELECT l.issuer, l.subject, l.user_id::text, l.refresh_token_enc, l.vouched_at
		FROM oidc_links l JOIN users u ON u.id = l.user_id
		WHERE l.issuer = $1 AND l.refresh_token_enc IS NOT NULL AND u.disabled_at IS NULL
		  AND (l.vouched_at IS NULL OR l.vouched_at < $2)
		ORDER BY l.vouched_at NULLS FIRST LIMIT 10000`, issuer, cutoff)
	if err != nil {
		return nil, fmt.Errorf("store: oidc links to sweep: %w", err)
	}
	links, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OIDCLink, error) { return scanOIDCLink(r) })
	if err != nil {
		return nil, fmt.Errorf("store: oidc links to sweep: %w", err)
	}
	return links, nil
}

// ClaimOIDCLinkForSweep locks (issuer, subject) for this transaction when it
// still holds a refresh token, its user is not disabled and its issuer last
// vouched before cutoff; ok is false when another process holds it or
// already asked. One process at a time uses a refresh token: a rotated
// token used twice is refused, which would read as deprovisioning.
func ClaimOIDCLinkForSweep(ctx context.Context, tx pgx.Tx, issuer, subject string, cutoff time.Time) (l OIDCLink, ok bool, err error) {
	l, err = scanOIDCLink(tx.QueryRow(ctx, `SELECT `+oidcLinkColumns+` FROM oidc_links
		WHERE issuer = $1 AND subject = $2 AND refresh_token_enc IS NOT NULL AND (vouched_at IS NULL OR vouched_at < $3)
		  AND user_id IN (SELECT id FROM users WHERE disabled_at IS NULL)
		FOR UPDATE SKIP LOCKED`, issuer, subject, cutoff))
	if errors.Is(err, ErrNotFound) {
		return OIDCLink{}, false, nil
	}
	if err != nil {
		return OIDCLink{}, false, fmt.Errorf("store: claim oidc link: %w", err)
	}
	return l, true, nil
}
