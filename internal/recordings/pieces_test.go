package recordings_test

import (
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/recordings"
	"github.com/openvisit/openvisit/internal/store"
)

// TestJoinPieces: a participant's piece interrupted by its recorder's death
// (incomplete) and the piece the next recorder began within JoinWindow are
// parts 1 and 2 of one recording, with the gap between them stated; a
// piece that ended normally, one begun later than JoinWindow, another
// participant's and another visit's pieces are recordings of their own.
func TestJoinPieces(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	v, w := ids.NewVisitID(), ids.NewVisitID()
	pat, prov := ids.NewParticipantID(), ids.NewParticipantID()
	rec := func(id string, visit ids.VisitID, p ids.ParticipantID, status string, start, end, beat time.Duration) store.Recording {
		e := t0.Add(end)
		return store.Recording{ID: id, VisitID: visit, ParticipantID: p, Status: status, StartedAt: t0.Add(start), EndedAt: &e, HeartbeatAt: t0.Add(beat)}
	}
	recs := []store.Recording{
		// Newest first, as listed.
		rec("pat-4", v, pat, store.RecComplete, 200*time.Second, 260*time.Second, 260*time.Second), // 40 s after pat-3's last beat
		rec("pat-3", v, pat, store.RecIncomplete, 130*time.Second, 150*time.Second, 160*time.Second),
		rec("pat-2", v, pat, store.RecIncomplete, 66*time.Second, 120*time.Second, 125*time.Second), // continues pat-1, interrupted
		rec("prov-1", v, prov, store.RecComplete, 0, 60*time.Second, 60*time.Second),
		rec("prov-2", v, prov, store.RecComplete, 65*time.Second, 120*time.Second, 120*time.Second), // prov-1 ended normally
		rec("pat-1", v, pat, store.RecIncomplete, 0, 55*time.Second, 60*time.Second),
		rec("other", w, pat, store.RecComplete, 66*time.Second, 70*time.Second, 70*time.Second),
	}
	got := recordings.JoinPieces(recs)
	want := map[string]recordings.Piece{
		"pat-1":  {SeriesID: "pat-1", Part: 1, Parts: 3},
		"pat-2":  {SeriesID: "pat-1", Part: 2, Parts: 3, GapBeforeMS: 11_000},
		"pat-3":  {SeriesID: "pat-1", Part: 3, Parts: 3, GapBeforeMS: 10_000},
		"pat-4":  {SeriesID: "pat-4", Part: 1, Parts: 1},
		"prov-1": {SeriesID: "prov-1", Part: 1, Parts: 1},
		"prov-2": {SeriesID: "prov-2", Part: 1, Parts: 1},
		"other":  {SeriesID: "other", Part: 1, Parts: 1},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %+v, want %+v", id, got[id], w)
		}
	}
	p, series := recordings.SeriesOf(recs[2], recs)
	if p != want["pat-2"] || len(series) != 3 || series[0].ID != "pat-1" || series[1].ID != "pat-2" || series[2].ID != "pat-3" ||
		series[1].GapBeforeMS != 11_000 {
		t.Errorf("series of pat-2: %+v %+v", p, series)
	}
}
