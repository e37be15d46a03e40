package recording

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Takeover. Any number of recorders share the visits: each polls for
// switched-on visits nobody holds and claims them (store.ClaimRecording).
// A recorder that dies stops renewing its claims; after store.ClaimLease
// another recorder's poll takes the visit over and records it into new
// recordings (one per participant: the next piece of each participant's
// recording, which internal/recordings joins with the piece before).
//
// The dead recorder's pieces are left 'recording' with an open multipart
// upload per chunk in flight, and the spooled parts it had not uploaded are
// on its own disk, out of reach. The recorder that took the visit over
// marks them incomplete at once and recovers them (recover.go): each open
// upload is completed with the parts already in storage — they hold whole,
// authenticated segments of a WebM prefix, so completing keeps that media
// playable, where aborting would throw it away — or aborted when no part
// reached storage. No upload stays open. Without a takeover (the recorder
// was alone), the sweep finds the same recordings after leaseTimeout.

// takeOverMissBeats: a recording whose recorder missed this many beats is
// no longer written by it. The claim lapsed already (ClaimLease, five
// beats); this margin covers the moment between the holder's renewal of its
// claim and of its recordings in one beat.
const takeOverMissBeats = 2

// takeOver runs after this recorder took visit's claim over from the
// recorder named by from (a claim's recorder_node, "node/instance"): it
// marks that recorder's unfinished recordings of the visit incomplete and
// recovers their chunks in the background.
func (s *Service) takeOver(ctx context.Context, visit ids.VisitID, from string) {
	node, _, _ := strings.Cut(from, "/")
	if node == "" {
		return
	}
	recs, err := store.OrphanTakenOverRecordings(ctx, s.p.Pool, visit, node, s.p.Now().Add(-takeOverMissBeats*heartbeatEvery))
	if err != nil {
		s.log.Warn("takeover: recordings of the previous recorder not marked; the sweep will", "visit", string(visit), "err", err)
		return
	}
	if len(recs) == 0 {
		return
	}
	for _, id := range recs {
		s.log.Warn("recording interrupted by its recorder's death: taken over, marked incomplete", "recording", id, "from", node)
		if err := audit.New(s.p.Pool).Append(ctx, audit.Event{
			ActorID: "recorder:" + s.p.Node, ActorRole: "system", Action: ActionRecordingSweep,
			ResourceType: "recording", ResourceID: id, VisitID: string(visit), Outcome: audit.Success,
			Reason: "recorder lease lapsed; taken over from " + node,
		}); err != nil {
			s.log.Error("audit append failed", "action", ActionRecordingSweep, "err", err)
		}
	}
	if s.rc == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		rctx, cancel := context.WithTimeout(s.ctx, recoverTimeout)
		defer cancel()
		done := s.rc.recoverAll(rctx, func(ctx context.Context, tx pgx.Tx, skip []string) (store.RecoverableChunk, bool, error) {
			return store.ClaimTakenOverChunk(ctx, tx, recs, skip)
		})
		if !done {
			s.log.Warn("takeover: some chunks not recovered yet; the recovery loop retries them", "visit", string(visit))
		}
	}()
}
