package signaling

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/recordings"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit actions of the recording routes. Keep them stable.
const (
	actionRecRequest   = recordings.ActionRequest
	actionRecConsent   = recordings.ActionConsent
	actionRecDecline   = recordings.ActionDecline
	actionRecWithdraw  = recordings.ActionWithdraw
	actionRecStartCmd  = recordings.ActionStartCmd
	actionRecStopCmd   = recordings.ActionStopCmd
	actionRecList      = "recording.list"
	actionRecView      = "recording.view"
	actionRecPlay      = "recording.play"
	actionRecDownload  = "recording.download"
	actionRecLegalHold = recordings.ActionLegalHold
)

var errRecAuditDown = httpx.E(httpx.KindUnavailable, "audit_unavailable", "The audit log cannot be written; access is refused.")

// RecordingState is what both sides' recording indicator shows
// (recordings.State).
type RecordingState = recordings.State

// recordingService is the recordings domain on this server's database.
func (s *Server) recordingService() *recordings.Service {
	return recordings.New(s.env())
}

func (s *Server) recordingState(c *gin.Context) {
	st, err := s.recordingService().State(c.Request.Context(), ids.VisitID(c.Param("visit_id")))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// recordingChange decodes the (empty) body, runs the change of the visit's
// recording by the request's principal, then answers with the new state
// and nudges the recorder.
func (s *Server) recordingChange(c *gin.Context, change func(context.Context, recordings.Change) (RecordingState, error)) {
	if c.Request.ContentLength > 0 {
		var empty struct{}
		if err := httpx.DecodeJSON(c, &empty); err != nil {
			s.abort(c, err)
			return
		}
	}
	s.answerRecordingChange(c, change)
}

func (s *Server) answerRecordingChange(c *gin.Context, change func(context.Context, recordings.Change) (RecordingState, error)) {
	p := principal(c)
	v := ids.VisitID(c.Param("visit_id"))
	st, err := change(c.Request.Context(), recordings.Change{Visit: v, Actor: p.ActorID(), Participant: p.ParticipantID,
		Event: s.visitEvent(c, "", v)})
	if err != nil {
		s.abort(c, err)
		return
	}
	if s.p.Recordings != nil {
		s.p.Recordings.Sync()
	}
	c.JSON(http.StatusOK, st)
}

func (s *Server) requestRecording(c *gin.Context) {
	s.recordingChange(c, s.recordingService().Request)
}

type consentRequest struct {
	Accept *bool `json:"accept"`
}

func (s *Server) consentRecording(c *gin.Context) {
	var req consentRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if req.Accept == nil {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_request", "accept (true or false) is required"))
		return
	}
	s.answerRecordingChange(c, func(ctx context.Context, ch recordings.Change) (RecordingState, error) {
		return s.recordingService().Answer(ctx, ch, *req.Accept)
	})
}

func (s *Server) withdrawRecording(c *gin.Context) {
	s.recordingChange(c, s.recordingService().Withdraw)
}

func (s *Server) startRecording(c *gin.Context) {
	if s.p.Recordings == nil {
		s.abort(c, httpx.E(httpx.KindUnavailable, "recording_unavailable", "Recording is not available on this server."))
		return
	}
	s.recordingChange(c, s.recordingService().Start)
}

func (s *Server) stopRecording(c *gin.Context) {
	s.recordingChange(c, s.recordingService().Stop)
}

// recordingEvent is an audit entry about recording rec.
func (s *Server) recordingEvent(c *gin.Context, action string, rec store.Recording, breakGlass bool) audit.Event {
	p := principal(c)
	ev := audit.Event{ActorID: p.ActorID(), ActorRole: string(p.Kind), Action: action, ResourceType: "recording",
		ResourceID: rec.ID, VisitID: string(rec.VisitID), PatientID: rec.PatientID, Outcome: audit.Success,
		IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
	if breakGlass {
		ev.Reason = "break-glass"
	}
	return ev
}

// recordingAccess loads the recording named by the route and checks the
// caller may reach it: an admin, the visit's provider, or a provider with
// an active break-glass grant. Anyone else gets 404 (audited as denied).
func (s *Server) recordingAccess(c *gin.Context) (store.Recording, bool, bool) {
	p := principal(c)
	rec, bg, err := s.recordingService().Access(c.Request.Context(), c.Param("recording_id"), recordings.Viewer{Kind: p.Kind, UserID: p.UserID})
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.deny(c, p, "no such recording", errNotFound)
	case errors.Is(err, recordings.ErrNoAccess):
		s.deny(c, p, "not a participant", errNotFound)
	case err != nil:
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "unavailable", "The service is unavailable; try again shortly.", err))
	default:
		return rec, bg, true
	}
	return rec, false, false
}

// RecordingView is a recording's metadata: the piece's own chunks, and
// its place among the pieces of its joined recording (a takeover of the
// recorder splits one participant's recording into pieces; Series lists
// them in order with the gap before each; recordings.JoinPieces).
type RecordingView struct {
	store.Recording
	recordings.Piece
	Series []recordings.SeriesPart `json:"series"`
	Chunks []ChunkView             `json:"chunks"`
}

// ChunkView is one playable part of a recording (a complete WebM file).
type ChunkView struct {
	store.Chunk
	// MediaURL serves the chunk with Range support; add ?download=1 for
	// an attachment.
	MediaURL string `json:"media_url,omitempty"`
}

func (s *Server) listRecordings(c *gin.Context) {
	ctx := c.Request.Context()
	p := principal(c)
	var f store.RecordingFilter
	if v := c.Query("visit_id"); v != "" {
		if !ids.Valid(v) {
			s.abort(c, httpx.E(httpx.KindInvalid, "bad_visit_id", "visit_id is not an id"))
			return
		}
		f.VisitID = ids.VisitID(v)
	}
	if v := c.Query("patient_id"); v != "" {
		if !ids.Valid(v) {
			s.abort(c, httpx.E(httpx.KindInvalid, "bad_patient_id", "patient_id is not an id"))
			return
		}
		f.PatientID = v
	}
	for name, dst := range map[string]**time.Time{"from": &f.From, "to": &f.To} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.abort(c, httpx.E(httpx.KindInvalid, "bad_"+name, name+" must be an RFC 3339 time"))
				return
			}
			*dst = &t
		}
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			s.abort(c, httpx.E(httpx.KindInvalid, "bad_limit", "limit must be 1..500"))
			return
		}
		f.Limit = n
	}
	ev := audit.Event{ActorID: p.ActorID(), ActorRole: string(p.Kind), Action: actionRecList, ResourceType: "recording",
		VisitID: string(f.VisitID), PatientID: f.PatientID, Outcome: audit.Success, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
	recs, err := s.recordingService().List(ctx, f, recordings.Viewer{Kind: p.Kind, UserID: p.UserID}, ev)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"recordings": recs})
}

func (s *Server) getRecording(c *gin.Context) {
	ctx := c.Request.Context()
	rec, bg, ok := s.recordingAccess(c)
	if !ok {
		return
	}
	chunks, err := store.ChunksOf(ctx, s.p.DB, rec.ID)
	if err != nil {
		s.abort(c, err)
		return
	}
	piece, series, err := s.recordingService().Series(ctx, rec)
	if err != nil {
		s.abort(c, err)
		return
	}
	ev := s.recordingEvent(c, actionRecView, rec, bg)
	ev.Reason = strings.TrimSpace(ev.Reason + " series=" + piece.SeriesID + " part=" + strconv.Itoa(piece.Part) + "/" + strconv.Itoa(piece.Parts))
	if err := s.p.DB.Audit().Append(ctx, ev); err != nil {
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "audit_unavailable", errRecAuditDown.Message, err))
		return
	}
	view := RecordingView{Recording: rec, Piece: piece, Series: series, Chunks: make([]ChunkView, 0, len(chunks))}
	for _, ch := range chunks {
		cv := ChunkView{Chunk: ch}
		if ch.Status == store.ChunkComplete && rec.Status != store.RecDeleted {
			cv.MediaURL = "/api/v1/recordings/" + rec.ID + "/chunks/" + strconv.Itoa(ch.Seq)
		}
		view.Chunks = append(view.Chunks, cv)
	}
	c.JSON(http.StatusOK, view)
}

// mediaError ends a media request without a body: a <video> element or a
// download cannot use one, and no byte of a recording may precede the
// audit entry. The code is in X-Error-Code, the request ID in X-Request-ID.
func (s *Server) mediaError(c *gin.Context, kind httpx.Kind, code string, err error) {
	if err != nil {
		s.log.Error("recording media refused", "request_id", httpx.RequestID(c), "code", code, "err", err)
	}
	c.Header(MediaErrorHeader, code)
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatus(httpx.Status(kind))
}

// playRecording serves one chunk's plaintext WebM with HTTP Range: only the
// segments a range touches are fetched and decrypted. The access is
// audited, and the entry committed, before the first byte is written; if
// the audit log cannot be written, nothing is sent.
//
// Integrity. Open authenticates the header and the last segment before the
// audit; a failure there (or a chunk already known to have failed) is
// answered 500 integrity_failed with no body. A segment that fails later,
// mid-body, cannot change the status already sent: the response is aborted
// (http.ErrAbortHandler: HTTP/2 resets the stream, HTTP/1.1 closes the
// connection), so the client sees a failed transfer, never a clean end, and
// the chunk is marked so that every later request (the player's check, a
// browser's retry) gets integrity_failed before any byte. Pre-verifying a
// range before sending headers would mean reading a whole chunk for a
// player's open-ended first request; aborting keeps playback streaming.
// Either way the failure is audited (outcome failure, reason integrity) and,
// the first time, raises a critical integrity_failure alert: a failed tag
// on stored PHI means corruption or tampering, and someone must look.
func (s *Server) playRecording(c *gin.Context) {
	ctx := c.Request.Context()
	rec, bg, ok := s.recordingAccess(c)
	if !ok {
		return
	}
	seq, err := strconv.Atoi(c.Param("seq"))
	if err != nil || seq < 0 || seq > 1_000_000 {
		s.mediaError(c, httpx.KindNotFound, "not_found", nil)
		return
	}
	if rec.Status == store.RecDeleted {
		s.mediaError(c, httpx.KindNotFound, "recording_deleted", nil)
		return
	}
	if s.p.Recordings == nil {
		s.mediaError(c, httpx.KindUnavailable, "recording_storage_unavailable", nil)
		return
	}
	chunks, err := store.ChunksOf(ctx, s.p.DB, rec.ID)
	if err != nil {
		s.mediaError(c, httpx.KindUnavailable, "unavailable", err)
		return
	}
	if seq >= len(chunks) || chunks[seq].Status != store.ChunkComplete {
		s.mediaError(c, httpx.KindNotFound, "not_found", nil)
		return
	}
	ch := chunks[seq]
	download := c.Query("download") == "1"
	action := actionRecPlay
	if download {
		action = actionRecDownload
	}
	ev := s.recordingEvent(c, action, rec, bg)
	if r := c.GetHeader("Range"); r != "" && len(r) <= 200 {
		ev.Reason += " range=" + r
	}
	ev.Reason += " chunk=" + strconv.Itoa(seq)
	pb, err := s.p.Recordings.Open(ctx, rec, ch)
	if err != nil {
		if recordings.IsIntegrityFailure(err) {
			s.integrityFailure(c, rec, ch, ev, err)
			s.mediaError(c, httpx.KindInternal, "integrity_failed", nil)
			return
		}
		s.mediaError(c, httpx.KindUnavailable, "recording_unavailable", err)
		return
	}
	defer pb.Close()
	if err := s.p.DB.Audit().Append(ctx, ev); err != nil {
		s.mediaError(c, httpx.KindUnavailable, "audit_unavailable", err)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "video/webm")
	h.Set("Cache-Control", "no-store")
	if download {
		h.Set("Content-Disposition", `attachment; filename="recording-`+rec.ID+`-`+strconv.Itoa(seq)+`.webm"`)
	}
	body := &bodyReader{rs: pb}
	http.ServeContent(c.Writer, c.Request, "", ch.StartedAt, body)
	if body.err == nil || ctx.Err() != nil {
		return // served, or the client went away
	}
	if recordings.IsIntegrityFailure(body.err) {
		s.integrityFailure(c, rec, ch, ev, body.err)
	} else {
		s.log.Error("recording playback failed mid-response; aborted", "request_id", httpx.RequestID(c), "recording", rec.ID, "chunk", seq, "err", body.err)
	}
	panic(http.ErrAbortHandler)
}

// bodyReader keeps the first read error, which http.ServeContent drops.
type bodyReader struct {
	rs  io.ReadSeeker
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.rs.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *bodyReader) Seek(off int64, whence int) (int64, error) { return b.rs.Seek(off, whence) }

// integrityFailure records a chunk that failed authentication: it marks the
// chunk (refused from now on), audits the access as failed (reason
// integrity) and, the first time, raises a critical alert. It writes nothing
// to the response.
func (s *Server) integrityFailure(c *gin.Context, rec store.Recording, ch store.Chunk, ev audit.Event, cause error) {
	ctx := context.WithoutCancel(c.Request.Context())
	detail := "chunk " + strconv.Itoa(ch.Seq) + " failed authentication"
	ev.Reason = "integrity chunk=" + strconv.Itoa(ch.Seq)
	if seg, ok := recordings.FailedSegment(cause); ok {
		detail += " at segment " + strconv.FormatUint(seg, 10)
		ev.Reason += " segment=" + strconv.FormatUint(seg, 10)
	}
	if errors.Is(cause, recordings.ErrIntegrityFailed) {
		ev.Reason += " (known)"
	}
	ev.Outcome = audit.Failure
	s.log.Error("recording failed an integrity check", "request_id", httpx.RequestID(c), "recording", rec.ID, "chunk", ch.Seq, "err", cause)
	first, err := store.MarkChunkIntegrityFailed(ctx, s.p.DB, rec.ID, ch.Seq, s.p.Now())
	if err != nil {
		s.log.Error("integrity failure not recorded on the chunk", "recording", rec.ID, "err", err)
		first = true // alert anyway: better twice than never
	}
	if err := s.p.DB.Audit().Append(ctx, ev); err != nil {
		s.auditFailed(ctx, ev.Action, err)
	}
	if first && s.p.Alerts != nil {
		s.p.Alerts.Raise(ctx, alerts.KindIntegrityFailure, rec.ID,
			detail+": the stored ciphertext was modified or damaged (corruption or tampering); no unauthenticated byte was served")
	}
}

type legalHoldRequest struct {
	Hold *bool `json:"hold"`
}

func (s *Server) legalHold(c *gin.Context) {
	var req legalHoldRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if req.Hold == nil {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_request", "hold (true or false) is required"))
		return
	}
	rec, err := s.recordingService().LegalHold(c.Request.Context(), c.Param("recording_id"), *req.Hold,
		s.recordingEvent(c, "", store.Recording{}, false))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, rec)
}
