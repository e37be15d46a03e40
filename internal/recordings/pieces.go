package recordings

import (
	"sort"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Pieces across a takeover. When a recorder dies mid-visit another takes
// the visit over and records each participant into a new recording row (a
// piece): the dead recorder's piece is kept up to what reached storage
// (recording/takeover.go). The clinic sees one recording per participant
// and start: the pieces are joined in order, with the gap between them
// stated. No column links the pieces (the schema is unchanged); the link is
// derived: a piece continues its participant's previous piece in the same
// visit when that one was interrupted (incomplete: its recorder died) and
// this one began within JoinWindow of the interrupted recorder's last
// heartbeat. A piece that ended normally (stop, visit ended, the visit
// moved to another media node) starts no continuation.
const JoinWindow = 30 * time.Second

// Piece places one recording row within its participant's recording.
type Piece struct {
	// SeriesID names the joined recording: its first piece's ID.
	SeriesID string `json:"series_id"`
	// Part is this piece's place (1-based) of Parts.
	Part  int `json:"part"`
	Parts int `json:"parts"`
	// GapBeforeMS is the media missing between the previous piece's end
	// and this piece's start (the takeover, and what the dead recorder had
	// not uploaded); 0 for the first piece.
	GapBeforeMS int64 `json:"gap_before_ms"`
}

// Listed is a recording as the library lists it: the row and its place in
// the joined recording.
type Listed struct {
	store.Recording
	Piece
}

// SeriesPart is one piece of a joined recording, as the metadata of any of
// its pieces lists them (the same facts the listing gives).
type SeriesPart struct {
	ID          string     `json:"id"`
	Part        int        `json:"part"`
	Status      string     `json:"status"`
	StartedAt   time.Time  `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	GapBeforeMS int64      `json:"gap_before_ms"`
}

// continues reports whether next continues prev (same participant of the
// same visit, ordered by start).
func continues(prev, next store.Recording) bool {
	return prev.Status == store.RecIncomplete && !next.StartedAt.Before(prev.StartedAt) &&
		next.StartedAt.Sub(prev.HeartbeatAt) <= JoinWindow
}

// end is where a piece's media ends (its start when nothing is known).
func end(r store.Recording) time.Time {
	if r.EndedAt != nil {
		return *r.EndedAt
	}
	return r.StartedAt
}

// JoinPieces places each of recs within its joined recording. The result
// is keyed by recording ID; recs may be in any order.
func JoinPieces(recs []store.Recording) map[string]Piece {
	type who struct {
		v ids.VisitID
		p ids.ParticipantID
	}
	byWho := map[who][]store.Recording{}
	for _, r := range recs {
		k := who{r.VisitID, r.ParticipantID}
		byWho[k] = append(byWho[k], r)
	}
	out := make(map[string]Piece, len(recs))
	for _, list := range byWho {
		sort.Slice(list, func(i, j int) bool {
			if list[i].StartedAt.Equal(list[j].StartedAt) {
				return list[i].ID < list[j].ID
			}
			return list[i].StartedAt.Before(list[j].StartedAt)
		})
		var series []string // the current series' pieces
		for i, r := range list {
			p := Piece{SeriesID: r.ID, Part: 1}
			if i > 0 && continues(list[i-1], r) {
				prev := out[list[i-1].ID]
				p = Piece{SeriesID: prev.SeriesID, Part: prev.Part + 1,
					GapBeforeMS: max(0, r.StartedAt.Sub(end(list[i-1])).Milliseconds())}
			} else {
				series = series[:0]
			}
			out[r.ID] = p
			series = append(series, r.ID)
			for _, id := range series {
				q := out[id]
				q.Parts = len(series)
				out[id] = q
			}
		}
	}
	return out
}

// List joins recs for the listing, in their order.
func listed(recs []store.Recording) []Listed {
	pieces := JoinPieces(recs)
	out := make([]Listed, len(recs))
	for i, r := range recs {
		out[i] = Listed{Recording: r, Piece: pieces[r.ID]}
	}
	return out
}

// SeriesOf returns rec's place in its joined recording and the pieces of
// that recording in order, from the recordings of rec's visit.
func SeriesOf(rec store.Recording, visit []store.Recording) (Piece, []SeriesPart) {
	pieces := JoinPieces(visit)
	p, ok := pieces[rec.ID]
	if !ok { // not among visit's: alone
		return Piece{SeriesID: rec.ID, Part: 1, Parts: 1}, []SeriesPart{{ID: rec.ID, Part: 1, Status: rec.Status, StartedAt: rec.StartedAt, EndedAt: rec.EndedAt}}
	}
	parts := make([]SeriesPart, p.Parts)
	for _, r := range visit {
		q := pieces[r.ID]
		if q.SeriesID == p.SeriesID {
			parts[q.Part-1] = SeriesPart{ID: r.ID, Part: q.Part, Status: r.Status, StartedAt: r.StartedAt, EndedAt: r.EndedAt, GapBeforeMS: q.GapBeforeMS}
		}
	}
	return p, parts
}
