package app_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
)

// recordingFixture makes a completed recording of visit (one chunk, a
// wrapped key of the right shape) and a pending recording request, so the
// recording routes have something to act on. The matrix server has no
// object storage: media routes answer 503 after the access check, which is
// what the matrix is about (playback itself is tested in internal/e2e).
func (s *server) recordingFixture(t *testing.T, visit ids.VisitID) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	wrapped := make([]byte, keys.WrappedSize)
	_, _ = rand.Read(wrapped)
	now := s.Clock.Now()
	if err := store.CreateRecording(ctx, s.Pool, store.NewRecording{
		ID: id, VisitID: visit, ParticipantID: ids.NewParticipantID(), ParticipantRole: "patient",
		KEKID: "kek_fixture", WrappedDEK: wrapped, SegmentSize: 1 << 20, StartedAt: now, DeleteAfter: now.AddDate(6, 0, 0),
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.AddChunk(ctx, s.Pool, store.Chunk{RecordingID: id, Seq: 0, ObjectKey: "rec/" + uuid.NewString(), StartedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := store.FinishChunk(ctx, s.Pool, store.Chunk{RecordingID: id, Seq: 0, Status: store.ChunkComplete, Size: 1000, EndedAt: &now}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetRecordingStatus(ctx, s.Pool, id, store.RecComplete, &now); err != nil {
		t.Fatal(err)
	}
	if err := store.RequestRecording(ctx, s.Pool, visit, "fixture", now); err != nil {
		t.Fatal(err)
	}
	return id
}

// recordingMatrix holds the expectations of the recording routes.
//
// Visit-scoped routes follow the visit check (another visit: 404). Routes
// naming a recording answer 404 to everyone signed in but admins and the
// visit's provider (or a provider with an active break-glass grant).
func recordingMatrix() map[string]matrixCase {
	empty := func(*fixture) any { return struct{}{} }
	provOfVisit := expect{anon: 401, patient: 403, otherPatient: 403, provA: 200, provB: 404, admin: 403}
	patientOfVisit := expect{anon: 401, patient: 200, otherPatient: 404, provA: 403, provB: 403, admin: 403}
	recordingReaders := expect{anon: 401, patient: 404, otherPatient: 404, provA: 200, provB: 404, admin: 200}
	return map[string]matrixCase{
		"GET /api/v1/visits/:visit_id/recording":          {want: expect{anon: 401, patient: 200, otherPatient: 404, provA: 200, provB: 404, admin: 200}},
		"POST /api/v1/visits/:visit_id/recording/request": {want: provOfVisit, body: empty},
		// The fixture has a pending request: the visit's patient answers it.
		"POST /api/v1/visits/:visit_id/recording/consent": {want: patientOfVisit, body: func(*fixture) any { return map[string]bool{"accept": true} }},
		// No consent was given in the fixture: nothing to withdraw (409).
		"POST /api/v1/visits/:visit_id/recording/withdraw": {want: with(patientOfVisit, expect{patient: 409}), body: empty},
		// No object storage on the matrix server: 503 once access is granted.
		"POST /api/v1/visits/:visit_id/recording/start": {want: with(provOfVisit, expect{provA: 503}), body: empty},
		"POST /api/v1/visits/:visit_id/recording/stop":  {want: provOfVisit, body: empty},

		"GET /api/v1/recordings":                           {want: expect{anon: 401, patient: 403, otherPatient: 403, provA: 200, provB: 200, admin: 200}},
		"GET /api/v1/recordings/:recording_id":             {want: recordingReaders},
		"GET /api/v1/recordings/:recording_id/chunks/:seq": {want: with(recordingReaders, expect{provA: 503, admin: 503})},
		"POST /api/v1/admin/recordings/:recording_id/legal-hold": {want: adminOnly, body: func(*fixture) any {
			return map[string]bool{"hold": true}
		}},
	}
}
