// Package recording is OpenVisit's recorder: a Pion client that joins each
// visit whose recording is switched on as a silent service participant,
// muxes every participant's VP8/Opus into WebM as it arrives, encrypts it
// with the streaming AEAD of FORMAT.md under a per-recording data key, and
// uploads the ciphertext to S3 in chunks (multipart, through a bounded
// local spool that rides out storage outages). It also serves decryption
// for retrieval (Open), the retention job and KEK rewrap/retire.
package recording

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/logging"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
)

// Audit actions of the recording service. Keep them stable.
const (
	ActionRecordingStart  = "recording.start"
	ActionRecordingFinish = "recording.finish"
	ActionRecordingSweep  = "recording.mark_incomplete"
	ActionRecordingDelete = "recording.delete"
	ActionKEKRotate       = "kek.rotate"
	ActionKEKRewrap       = "kek.rewrap"
	ActionKEKRetire       = "kek.retire"
	ActionKEKGenerate     = "kek.generate"
)

// Lease timings: every heartbeat a live recorder renews its claims on
// visits (store.ClaimLease), reports which visits it wrote media for (the
// indicator: store.RecordingControl.State) and refreshes heartbeat_at of
// its recordings; a recording whose lease lapsed belongs to a recorder that
// died.
const (
	heartbeatEvery = time.Second
	leaseTimeout   = 30 * time.Second
	sweepEvery     = 15 * time.Second
)

// ActionMediaWritten is audited when the recorder first writes media for a
// visit's recording since it was switched on: from then on both sides are
// shown "Recording".
const ActionMediaWritten = "recording.media_written"

// Params configures a Service.
type Params struct {
	Pool    *pgxpool.Pool
	Objects *Objects
	Keys    *keys.KeyringFile
	Minter  *token.Minter
	Spool   *Spool
	Config  config.Recording
	// Node names this recorder in tokens, logs and recordings.recorder_node.
	Node string
	// TLS is used to dial media nodes (their WebSocket).
	TLS *tls.Config
	// ConfigureWebRTC adjusts the recorder's Pion settings (loopback in tests).
	ConfigureWebRTC func(*webrtc.SettingEngine)
	// PollInterval is how often switched-on visits are looked up (default 1 s).
	PollInterval time.Duration
	// BeforeClaim, when set, runs before each claim attempt (tests force
	// two polls to interleave there).
	BeforeClaim func(ids.VisitID)
	Logger      *slog.Logger
	Now         func() time.Time
}

// Stats counts what the recorder did.
type Stats struct {
	Sessions        int
	DroppedPackets  uint64
	PartsUploaded   uint64
	UploadRetries   uint64
	SpoolBytes      int64
	RecordingsTotal uint64
	// Backlog is the recordings not yet finalized: being recorded, or
	// sealed and waiting for their uploads to finish.
	Backlog int
}

// Service is the recorder role. Lifecycle: New → Start → Close; a closed
// Service cannot be restarted.
type Service struct {
	p   Params
	log *slog.Logger
	api *webrtc.API
	env *uploadEnv

	ctx    context.Context // ends retries for good (after Close's grace)
	cancel context.CancelFunc
	stop   chan struct{}
	loops  sync.WaitGroup // poll, heartbeat, sweep, retention loops
	wg     sync.WaitGroup // muxers, finalizers, uploads

	mu       sync.Mutex
	sessions map[ids.VisitID]*session   // one per claimed visit
	live     map[string]*participantRec // recordings not yet finalized
	closed   bool
	// written is, per claim, the frame count last reported (heartbeat).
	written map[string]uint64
	// instance names this process in its claims: the node name and a
	// random suffix.
	instance string
	// rc recovers chunks left unfinished (set by Start).
	rc *recovery

	dropped        atomic.Uint64
	parts, retries atomic.Uint64
	recordings     atomic.Uint64
}

// New builds a Service (no I/O).
func New(p Params) (*Service, error) {
	if p.Pool == nil || p.Objects == nil || p.Keys == nil || p.Minter == nil || p.Spool == nil {
		return nil, errors.New("recording: Pool, Objects, Keys, Minter and Spool are required")
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.PollInterval <= 0 {
		p.PollInterval = time.Second
	}
	if p.Node == "" {
		p.Node = "recorder"
	}
	if p.Config.PartSize < 5<<20 {
		p.Config.PartSize = 5 << 20
	}
	if p.Config.Retention <= 0 {
		p.Config.Retention = config.Default().Recording.Retention
	}
	log := p.Logger.With("component", "recorder")
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("recording: codecs: %w", err)
	}
	reg := &interceptor.Registry{}
	// NACK (ask for lost packets), RTCP reports, TWCC.
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, fmt.Errorf("recording: interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	se.LoggerFactory = logging.PionLoggerFactory(log.With("component", "pion"))
	if n := newBufferedNet(); n != nil {
		se.SetNet(n)
	}
	if p.ConfigureWebRTC != nil {
		p.ConfigureWebRTC(&se)
	}
	s := &Service{
		p: p, log: log,
		api:      webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)),
		stop:     make(chan struct{}),
		sessions: map[ids.VisitID]*session{},
		live:     map[string]*participantRec{},
		written:  map[string]uint64{},
		instance: p.Node + "/" + uuid.NewString()[:8],
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.env = &uploadEnv{
		objs: p.Objects, spool: p.Spool, pool: p.Pool, log: log, partSize: int(p.Config.PartSize),
		ctx: s.ctx, wg: &s.wg, partsUploaded: &s.parts, uploadRetries: &s.retries,
	}
	return s, nil
}

func (s *Service) segmentSize() int {
	if s.p.Config.SegmentSize == 0 {
		return 1 << 20
	}
	return s.p.Config.SegmentSize
}

// Start makes the bucket (if storage answers; uploads retry anyway), marks
// recordings orphaned by a dead recorder incomplete, and starts the loops.
func (s *Service) Start(ctx context.Context) error {
	if err := s.p.Objects.EnsureBucket(ctx); err != nil {
		s.log.Warn("object storage not ready; uploads will retry", "err", err)
	}
	s.sweep(ctx)
	s.startRecovery(ctx) // recover.go: chunks a stopped recorder left unfinished
	s.loops.Add(4)
	go s.loop(s.p.PollInterval, s.poll)
	go s.loop(heartbeatEvery, s.heartbeat)
	go s.loop(sweepEvery, s.sweep)
	go s.loop(s.retentionInterval(), func(ctx context.Context) {
		if n, err := s.RunRetention(ctx); err != nil {
			s.log.Error("retention", "err", err)
		} else if n > 0 {
			s.log.Info("retention deleted recordings", "count", n)
		}
	})
	s.log.Info("recorder started", "node", s.p.Node)
	return nil
}

func (s *Service) retentionInterval() time.Duration {
	if s.p.Config.RetentionInterval <= 0 {
		return time.Hour
	}
	return s.p.Config.RetentionInterval
}

func (s *Service) loop(every time.Duration, fn func(context.Context)) {
	defer s.loops.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
			fn(ctx)
			cancel()
		}
	}
}

// poll follows the recording switches: it leaves the visits it should no
// longer record (switch off, visit ended, claim lost, the visit moved to
// another media node, the node dropped us) and claims and joins the visits
// nobody records. A claim is one atomic UPDATE (store.ClaimRecording), so
// two polls at once — or two recorders — never both record a visit.
func (s *Service) poll(ctx context.Context) {
	held, free, err := store.RecordingWork(ctx, s.p.Pool, s.claimIDs())
	if err != nil {
		s.log.Warn("poll recording switches", "err", err)
		return
	}
	s.leaveUnheld(ctx, held)
	for _, a := range free {
		if !s.claimAndJoin(ctx, a) {
			return
		}
	}
}

// claimIDs lists the claims of this recorder's sessions.
func (s *Service) claimIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sessions))
	for _, ses := range s.sessions {
		out = append(out, ses.claim)
	}
	return out
}

// leaveUnheld leaves every session whose visit is not in held (still on,
// open and ours), whose media node changed or whose socket closed.
func (s *Service) leaveUnheld(ctx context.Context, held []store.ActiveRecording) {
	want := map[string]store.ActiveRecording{}
	for _, a := range held {
		want[a.ClaimID] = a
	}
	s.mu.Lock()
	var leave []*session
	for v, ses := range s.sessions {
		a, on := want[ses.claim]
		select {
		case <-ses.conn.Done():
			on = false // the node dropped us; claim and join again next poll
		default:
		}
		if on && a.NodeID != ses.node {
			// The visit moved (its node was counted dead and a participant's
			// join placed it elsewhere): follow it, even if the old node's
			// socket has not failed (a hung or unreachable node sends no
			// close). The new session records into new recordings.
			ses.log.Warn("recorder: the visit moved to another media node; following it", "from", string(ses.node), "to", string(a.NodeID))
			on = false
		}
		if !on {
			leave = append(leave, ses)
			delete(s.sessions, v)
		}
	}
	s.mu.Unlock()
	for _, ses := range leave {
		s.leave(ses)
	}
}

// leave closes ses and gives its claim back. Leaving is quick; finalizing
// may wait on storage: off the loop.
func (s *Service) leave(ses *session) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ses.close()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
		defer cancel()
		if err := store.ReleaseClaim(ctx, s.p.Pool, ses.visit, ses.claim); err != nil {
			ses.log.Warn("release recording claim", "err", err)
		}
		s.mu.Lock()
		delete(s.written, ses.claim)
		s.mu.Unlock()
	}()
}

// claimAndJoin claims visit a and joins its room; false when the service
// is closing.
func (s *Service) claimAndJoin(ctx context.Context, a store.ActiveRecording) bool {
	s.mu.Lock()
	closed, busy := s.closed, s.sessions[a.VisitID] != nil
	s.mu.Unlock()
	if closed {
		return false
	}
	if busy {
		return true // our own claim lapsed (a slow database): keep the session
	}
	if s.p.BeforeClaim != nil {
		s.p.BeforeClaim(a.VisitID)
	}
	// A previous process's claims lapse by themselves (store.ClaimLease):
	// claims name this process, not just the node, so none is mistaken
	// for ours.
	claim, ok, err := store.ClaimRecording(ctx, s.p.Pool, a.VisitID, s.instance, uuid.NewString())
	if err != nil || !ok {
		if err != nil {
			s.log.Warn("claim recording", "visit", string(a.VisitID), "err", err)
		}
		return true // another recorder (or poll) has it
	}
	if claim.TakenFrom != "" {
		s.takeOver(ctx, a.VisitID, claim.TakenFrom) // takeover.go
	}
	ses, err := s.joinRoom(ctx, claim)
	if err != nil {
		s.log.Warn("recorder could not join", "visit", string(a.VisitID), "err", err)
		if rerr := store.ReleaseClaim(ctx, s.p.Pool, a.VisitID, claim.ClaimID); rerr != nil {
			s.log.Warn("release recording claim", "visit", string(a.VisitID), "err", rerr)
		}
		return true
	}
	s.mu.Lock()
	closed, busy = s.closed, s.sessions[a.VisitID] != nil
	if !closed && !busy {
		s.sessions[a.VisitID] = ses
	}
	s.mu.Unlock()
	if closed || busy {
		// Never replace (and so orphan) a session: leave the new one.
		s.leave(ses)
	}
	return !closed
}

// SyncNow runs one poll at once (the control plane calls it after start
// and stop, so that recording follows the switch without waiting).
func (s *Service) SyncNow() {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	s.poll(ctx)
}

func (s *Service) track(r *participantRec) {
	s.recordings.Add(1)
	s.mu.Lock()
	s.live[r.id] = r
	s.mu.Unlock()
}

// heartbeat renews this recorder's claims (leaving a visit whose claim was
// lost), reports the visits it wrote media for since the last beat, and
// refreshes its recordings' lease.
func (s *Service) heartbeat(ctx context.Context) {
	held, err := store.RenewClaims(ctx, s.p.Pool, s.claimIDs())
	if err != nil {
		s.log.Warn("renew recording claims", "err", err)
	} else {
		s.dropLost(held)
	}
	s.reportMedia(ctx)
	s.mu.Lock()
	list := make([]string, 0, len(s.live))
	for id := range s.live {
		list = append(list, id)
	}
	s.mu.Unlock()
	if err := store.HeartbeatRecordings(ctx, s.p.Pool, list, s.p.Now()); err != nil {
		s.log.Warn("heartbeat", "err", err)
	}
}

// dropLost leaves the sessions whose claim is no longer held.
func (s *Service) dropLost(held map[string]bool) {
	s.mu.Lock()
	var lost []*session
	for v, ses := range s.sessions {
		if !held[ses.claim] {
			lost = append(lost, ses)
			delete(s.sessions, v)
		}
	}
	s.mu.Unlock()
	for _, ses := range lost {
		ses.log.Warn("recorder: lost the claim on this visit; leaving")
		s.leave(ses)
	}
}

// reportMedia tells the database which visits this recorder wrote media for
// since the last beat: that, not the switch, is what turns the indicator on
// (store.RecordingControl.State). The first report of a start is audited.
func (s *Service) reportMedia(ctx context.Context) {
	// Never hold s.mu while taking a session's lock: a session creating a
	// participant's recording holds its own lock and then takes s.mu.
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, ses := range s.sessions {
		sessions = append(sessions, ses)
	}
	s.mu.Unlock()
	frames := make([]uint64, len(sessions))
	for i, ses := range sessions {
		frames[i] = ses.framesWritten()
	}
	var claims []string
	s.mu.Lock()
	for i, ses := range sessions {
		if frames[i] > s.written[ses.claim] {
			claims = append(claims, ses.claim)
			s.written[ses.claim] = frames[i]
		}
	}
	s.mu.Unlock()
	first, err := store.ReportRecordingMedia(ctx, s.p.Pool, claims, s.p.Now())
	if err != nil {
		s.log.Warn("report recording media", "err", err)
		return
	}
	for _, v := range first {
		if err := audit.New(s.p.Pool).Append(ctx, audit.Event{
			ActorID: "recorder:" + s.p.Node, ActorRole: "system", Action: ActionMediaWritten,
			ResourceType: "visit", ResourceID: string(v), VisitID: string(v), Outcome: audit.Success,
		}); err != nil {
			s.log.Error("audit append failed", "action", ActionMediaWritten, "err", err)
		}
	}
}

// sweep marks recordings whose recorder died (lease lapsed) incomplete:
// their completed chunks stay decryptable.
func (s *Service) sweep(ctx context.Context) {
	marked, err := store.MarkOrphanedRecordings(ctx, s.p.Pool, s.p.Now().Add(-leaseTimeout))
	if err != nil {
		s.log.Warn("sweep", "err", err)
		return
	}
	for _, id := range marked {
		s.log.Warn("recording orphaned by a stopped recorder: marked incomplete", "recording", id)
		if err := audit.New(s.p.Pool).Append(ctx, audit.Event{
			ActorID: "recorder:" + s.p.Node, ActorRole: "system", Action: ActionRecordingSweep,
			ResourceType: "recording", ResourceID: id, Outcome: audit.Success, Reason: "recorder lease lapsed",
		}); err != nil {
			s.log.Error("audit append failed", "action", ActionRecordingSweep, "err", err)
		}
	}
}

// finalize waits for a stopped participant's uploads and records the
// recording's end state.
func (s *Service) finalize(r *participantRec) {
	ctx := context.WithoutCancel(s.ctx)
	_ = store.SetRecordingStatus(ctx, s.p.Pool, r.id, store.RecFinalizing, nil)
	status := store.RecComplete
	ups := r.uploads()
	if len(ups) == 0 {
		status = store.RecIncomplete // nothing was recorded
	}
	for _, c := range ups {
		if c.result() != store.ChunkComplete {
			status = store.RecIncomplete
		}
	}
	ended := s.p.Now()
	if err := store.SetRecordingStatus(ctx, s.p.Pool, r.id, status, &ended); err != nil {
		r.log.Error("record recording status", "err", err)
	}
	if err := audit.New(s.p.Pool).Append(ctx, audit.Event{
		ActorID: "recorder:" + s.p.Node, ActorRole: "system", Action: ActionRecordingFinish,
		ResourceType: "recording", ResourceID: r.id, Outcome: audit.Success, Reason: status,
	}); err != nil {
		r.log.Error("audit append failed", "action", ActionRecordingFinish, "err", err)
	}
	s.mu.Lock()
	delete(s.live, r.id)
	s.mu.Unlock()
	r.log.Info("recording finalized", "status", status, "chunks", len(ups))
}

// Stats returns the recorder's counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	n, live := len(s.sessions), len(s.live)
	s.mu.Unlock()
	return Stats{Sessions: n, Backlog: live, DroppedPackets: s.dropped.Load(), PartsUploaded: s.parts.Load(),
		UploadRetries: s.retries.Load(), SpoolBytes: s.p.Spool.Used(), RecordingsTotal: s.recordings.Load()}
}

// Close leaves every room, then waits up to grace for uploads to finish
// (storage may be down); after that, unfinished chunks are abandoned (the
// next sweep marks their recordings incomplete).
func (s *Service) Close(grace time.Duration) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for _, ses := range s.sessions {
		sessions = append(sessions, ses)
	}
	s.sessions = map[ids.VisitID]*session{}
	s.mu.Unlock()
	close(s.stop)
	s.loops.Wait()
	done := make(chan struct{})
	go func() {
		for _, ses := range sessions {
			ses.close()
		}
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.log.Warn("recorder closing with uploads unfinished; they are abandoned")
		s.mu.Lock()
		for _, r := range s.live {
			for _, c := range r.uploads() {
				c.abandonNow()
			}
		}
		s.mu.Unlock()
		s.cancel()
		<-done
	}
	s.cancel()
	s.log.Info("recorder closed")
	return nil
}
