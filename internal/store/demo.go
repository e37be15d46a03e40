package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// CreateDemoVisit creates a demo visit (no provider, no patient record) on
// node ("" for unplaced).
func CreateDemoVisit(ctx context.Context, db DBTX, v ids.VisitID, node ids.NodeID) error {
	if _, err := db.Exec(ctx, `INSERT INTO visits (id, status, sfu_node_id, demo) VALUES ($1, 'scheduled', NULLIF($2, ''), true)`,
		string(v), string(node)); err != nil {
		return fmt.Errorf("store: demo visit: %w", err)
	}
	return nil
}

// AddDemoLink adds a participant in role to demo visit v with a one-time
// link, stored as its code's hash, valid until expires.
func AddDemoLink(ctx context.Context, db DBTX, v ids.VisitID, p ids.ParticipantID, role string, codeHash []byte, expires time.Time) error {
	if err := AddDemoParticipant(ctx, db, v, p, role); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `INSERT INTO demo_links (code_hash, visit_id, participant_id, expires_at) VALUES ($1, $2, $3, $4)`,
		codeHash, string(v), string(p), expires); err != nil {
		return fmt.Errorf("store: demo link: %w", err)
	}
	return nil
}

// AddDemoParticipant adds an admitted participant in role to demo visit v:
// one a demo link opens, or one of the load generator's simulated peers.
func AddDemoParticipant(ctx context.Context, db DBTX, v ids.VisitID, p ids.ParticipantID, role string) error {
	if _, err := db.Exec(ctx, `INSERT INTO participants (id, visit_id, role, subject) VALUES ($1, $2, $3, $4)`,
		string(p), string(v), role, "demo"); err != nil {
		return fmt.Errorf("store: demo participant: %w", err)
	}
	return nil
}

// DemoLinkUse is what a used demo link opens.
type DemoLinkUse struct {
	Visit       ids.VisitID
	Participant ids.ParticipantID
	Role        string
	Node        ids.NodeID // "" when unplaced
	NodeURL     string
}

// UseDemoLink marks the demo link with codeHash used, unless it was used,
// has expired or its visit ended (ErrNotFound).
func UseDemoLink(ctx context.Context, db DBTX, codeHash []byte, now time.Time) (DemoLinkUse, error) {
	var u DemoLinkUse
	var visit, participant, node string
	err := db.QueryRow(ctx, `UPDATE demo_links d SET used_at = now()
		FROM participants p, visits v LEFT JOIN sfu_nodes n ON n.id = v.sfu_node_id
		WHERE d.code_hash = $1 AND d.used_at IS NULL AND d.expires_at > $2
		  AND p.id = d.participant_id AND v.id = d.visit_id
		  AND v.status NOT IN ('completed', 'cancelled', 'no_show')
		RETURNING d.visit_id::text, d.participant_id::text, p.role, COALESCE(v.sfu_node_id, ''), COALESCE(n.url, '')`,
		codeHash, now).Scan(&visit, &participant, &u.Role, &node, &u.NodeURL)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, ErrNotFound
	}
	if err != nil {
		return u, fmt.Errorf("store: use demo link: %w", err)
	}
	u.Visit, u.Participant, u.Node = ids.VisitID(visit), ids.ParticipantID(participant), ids.NodeID(node)
	return u, nil
}
