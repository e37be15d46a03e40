package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu"
)

// mediaStateWait bounds one media state write.
const mediaStateWait = 5 * time.Second

// mediaStateHook records the media states the SFU reports (its
// PeerConnection per participant) in PostgreSQL with a visit change notice,
// so that the provider's waiting panel shows the patient's connection
// whichever process serves the provider's page. The SFU calls it from one
// goroutine of its own, on state changes only (sfu/mediastate.go).
func mediaStateHook(pool *pgxpool.Pool, log *slog.Logger) func(sfu.MediaStateChange) {
	return func(c sfu.MediaStateChange) {
		if c.Role == token.RoleRecorder {
			return // never shown, and has no participant row
		}
		ctx, cancel := context.WithTimeout(context.Background(), mediaStateWait)
		defer cancel()
		if _, err := store.SetMediaState(ctx, pool, c.Visit, c.Participant, string(c.State), c.At); err != nil {
			log.Warn("media state not recorded", "visit", string(c.Visit), "participant", string(c.Participant),
				"state", string(c.State), "err", err)
		}
	}
}
