package recording

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/client"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// queueLen bounds each participant's packet queue between the recorder's
// RTP read loops and its muxer: when the muxer falls behind (or waits for
// a full spool), packets are dropped and counted, never queued without end.
const queueLen = 2048

type mediaPacket struct {
	video bool
	gen   uint32 // the track generation: a republished track restarts its clock
	pkt   *rtp.Packet
}

// session is the recorder in one visit's room: one WebSocket and one
// PeerConnection to the media node, receiving every participant's tracks.
// Lifecycle: joinRoom → running (tracks arrive, each participant gets a
// participantRec) → close (leave, every participantRec finalizes in the
// background). A closed session is not reused.
type session struct {
	svc   *Service
	visit ids.VisitID
	node  ids.NodeID // the media node the session is in
	claim string     // the recording claim this session holds (store.ClaimRecording)
	log   *slog.Logger
	conn  *client.Conn // the socket and PeerConnection to the node

	mu     sync.Mutex
	recs   map[ids.ParticipantID]*participantRec
	closed bool

	trackWG sync.WaitGroup
}

func (s *Service) joinRoom(ctx context.Context, a store.ActiveRecording) (*session, error) {
	if a.NodeURL == "" {
		return nil, errors.New("recording: the visit's media node is unknown")
	}
	tok, _, err := s.p.Minter.Mint(token.Grant{
		Visit: a.VisitID, Participant: ids.NewParticipantID(), Role: token.RoleRecorder,
		Subject: "recorder:" + s.p.Node, Node: a.NodeID,
	})
	if err != nil {
		return nil, err
	}
	dialer := &websocket.Dialer{TLSClientConfig: s.p.TLS, HandshakeTimeout: 10 * time.Second}
	if dialer.TLSClientConfig == nil {
		dialer.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	ses := &session{
		svc: s, visit: a.VisitID, node: a.NodeID, claim: a.ClaimID,
		log:  s.log.With("visit", string(a.VisitID)),
		recs: map[ids.ParticipantID]*participantRec{},
	}
	conn, err := client.Join(ctx, client.Params{
		URL: a.NodeURL, Token: tok, Visit: a.VisitID, Dialer: dialer, API: s.api,
		JoinTimeout: 15 * time.Second,
		Handlers: client.Handlers{
			OnTrack:   ses.onTrack,
			OnMessage: ses.onMessage,
			OnError:   ses.onSignalingError,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("recording: join media node: %w", err)
	}
	ses.conn = conn
	conn.PC().OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		ses.log.Debug("recorder peer connection", "state", st.String())
	})
	// The protocol wants one client offer; the recorder publishes nothing.
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := conn.PC().AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			conn.Close()
			return nil, err
		}
	}
	if err := conn.Offer(); err != nil {
		conn.Close()
		return nil, err
	}
	conn.Start()
	ses.log.Info("recorder joined")
	return ses, nil
}

// onMessage logs the node's error (the close follows: Service notices it
// on ses.conn.Done()); the rest is not the recorder's business.
func (ses *session) onMessage(m client.Message) {
	if m.Type == protocol.TypeError {
		ses.log.Warn("recorder: media node error", "code", string(m.Code))
	}
}

// onSignalingError logs a failed SDP step; the session goes on, as a
// later offer may succeed. A candidate that cannot be applied is ignored.
func (ses *session) onSignalingError(err error) {
	if !errors.Is(err, client.ErrCandidate) {
		ses.log.Warn("recorder: signaling", "err", err)
	}
}

// onTrack feeds one remote track into its participant's queue. The read
// loop only reads and hands over: a full queue drops the packet (counted).
func (ses *session) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	mime := tr.Codec().MimeType
	if (video && mime != webrtc.MimeTypeVP8) || (!video && mime != webrtc.MimeTypeOpus) {
		ses.log.Warn("recorder: codec not recorded", "codec", mime)
		return
	}
	pid := ids.ParticipantID(tr.StreamID())
	if !ids.Valid(string(pid)) {
		return
	}
	rec, err := ses.participant(pid)
	if err != nil {
		ses.log.Error("recorder: cannot record participant", "participant", string(pid), "err", err)
		return
	}
	if rec == nil {
		return // closing
	}
	ses.trackWG.Add(1)
	defer ses.trackWG.Done()
	gen := rec.gen.Add(1)
	if video {
		ssrc := uint32(tr.SSRC())
		rec.pli.Store(&ssrc)
		rec.requestKeyframe()
	}
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if video {
			rec.packets[1].Add(1)
		} else {
			rec.packets[0].Add(1)
		}
		select {
		case rec.in <- mediaPacket{video: video, gen: gen, pkt: pkt}:
		default:
			rec.dropped.Add(1)
			ses.svc.dropped.Add(1)
		}
	}
}

// participant returns (creating it, with its recording row) the recorder of
// participant pid.
func (ses *session) participant(pid ids.ParticipantID) (*participantRec, error) {
	ses.mu.Lock()
	defer ses.mu.Unlock()
	if ses.closed {
		return nil, nil
	}
	if r := ses.recs[pid]; r != nil {
		return r, nil
	}
	r, err := ses.svc.newParticipantRec(ses, pid)
	if err != nil {
		return nil, err
	}
	ses.recs[pid] = r
	return r, nil
}

// framesWritten sums the frames written into the session's recordings.
func (ses *session) framesWritten() uint64 {
	ses.mu.Lock()
	defer ses.mu.Unlock()
	var n uint64
	for _, r := range ses.recs {
		n += r.written.Load()
	}
	return n
}

// close leaves the room and stops every participant's muxer; uploads go
// on in the background (Service.finalize).
func (ses *session) close() {
	ses.mu.Lock()
	if ses.closed {
		ses.mu.Unlock()
		return
	}
	ses.closed = true
	recs := make([]*participantRec, 0, len(ses.recs))
	for _, r := range ses.recs {
		recs = append(recs, r)
	}
	ses.mu.Unlock()

	_ = ses.conn.Leave()
	ses.conn.Close()
	ses.trackWG.Wait()
	for _, r := range recs {
		r.stop()
	}
	ses.log.Info("recorder left")
}

// participantRec records one participant: a recording row, a data key, a
// Muxer fed from a bounded queue by one goroutine.
type participantRec struct {
	svc   *Service
	id    string // recording ID
	pid   ids.ParticipantID
	log   *slog.Logger
	pc    *webrtc.PeerConnection
	in    chan mediaPacket
	quit  chan struct{}
	ended chan struct{} // closed when the muxer goroutine has closed the muxer

	gen     atomic.Uint32
	written atomic.Uint64          // frames written into the recording
	packets [2]atomic.Uint64       // received: [audio, video]
	pli     atomic.Pointer[uint32] // video SSRC for keyframe requests
	lastPLI atomic.Int64
	dropped atomic.Uint64

	mu     sync.Mutex
	chunks []*chunkUpload
}

func (s *Service) newParticipantRec(ses *session, pid ids.ParticipantID) (*participantRec, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kr, err := s.p.Keys.Keyring()
	if err != nil {
		return nil, err
	}
	recID := ids.NewParticipantID() // a fresh UUID
	dek := make([]byte, keys.DataKeySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, err
	}
	kekID, wrapped, err := kr.Wrap(dek, string(recID))
	if err != nil {
		return nil, err
	}
	now := s.p.Now()
	role := ""
	_ = s.p.Pool.QueryRow(ctx, `SELECT role FROM participants WHERE id = $1`, string(pid)).Scan(&role)
	err = pgx.BeginFunc(ctx, s.p.Pool, func(tx pgx.Tx) error {
		if err := store.CreateRecording(ctx, tx, store.NewRecording{
			ID: string(recID), VisitID: ses.visit, ParticipantID: pid, ParticipantRole: role,
			KEKID: kekID, WrappedDEK: wrapped, SegmentSize: s.segmentSize(), StartedAt: now,
			DeleteAfter: now.Add(s.p.Config.Retention), RecorderNode: s.p.Node,
		}); err != nil {
			return err
		}
		return audit.AppendTx(ctx, tx, audit.Event{
			ActorID: "recorder:" + s.p.Node, ActorRole: "system", Action: ActionRecordingStart,
			ResourceType: "recording", ResourceID: string(recID), VisitID: string(ses.visit), Outcome: audit.Success,
		})
	})
	if err != nil {
		clear(dek)
		return nil, err
	}
	r := &participantRec{
		svc: s, id: string(recID), pid: pid, pc: ses.conn.PC(),
		log:   ses.log.With("recording", string(recID)),
		in:    make(chan mediaPacket, queueLen),
		quit:  make(chan struct{}),
		ended: make(chan struct{}),
	}
	mux, err := NewMuxer(MuxParams{
		RecordingID: string(recID), DataKey: dek, SegmentSize: s.segmentSize(),
		ChunkDuration: s.p.Config.ChunkDuration,
		NewChunk: func(seq int, started time.Time) (ChunkSink, func(), error) {
			c, err := newChunkUpload(s.env, string(recID), seq, started)
			if err != nil {
				return nil, nil, err
			}
			r.mu.Lock()
			r.chunks = append(r.chunks, c)
			r.mu.Unlock()
			return c, c.start, nil
		},
		OnChunkClosed: func(sink ChunkSink, ended time.Time, d time.Duration) {
			if c, ok := sink.(*chunkUpload); ok {
				c.endedAt, c.durationMS = ended, d.Milliseconds()
			}
		},
		RequestKeyframe: r.requestKeyframe,
		Logger:          r.log,
		Now:             s.p.Now,
	})
	clear(dek) // the muxer keeps its own copy
	if err != nil {
		return nil, err
	}
	s.track(r)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r.run(mux)
	}()
	r.log.Info("recording participant", "participant", string(pid))
	return r, nil
}

// requestKeyframe sends a PLI for the participant's video, at most every
// 500 ms.
func (r *participantRec) requestKeyframe() {
	ssrc := r.pli.Load()
	if ssrc == nil {
		return
	}
	now := time.Now().UnixNano()
	last := r.lastPLI.Load()
	if now-last < int64(500*time.Millisecond) || !r.lastPLI.CompareAndSwap(last, now) {
		return
	}
	_ = r.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: *ssrc}})
}

// run is the muxer goroutine: the only user of mux.
func (r *participantRec) run(mux *Muxer) {
	defer close(r.ended)
	var vgen, agen uint32
	for {
		select {
		case <-r.quit:
			if err := mux.Close(); err != nil {
				r.log.Warn("mux close", "err", err)
			}
			r.log.Info("recording stopped", "video_frames", mux.VideoFrames, "audio_frames", mux.AudioFrames,
				"dropped_frames", mux.DroppedFrames, "dropped_packets", r.dropped.Load(), "chunks", mux.Chunks(),
				"audio_packets", r.packets[0].Load(), "video_packets", r.packets[1].Load())
			return
		case mp := <-r.in:
			if mp.video && mp.gen != vgen {
				vgen = mp.gen
				mux.ResetTrack(true)
			} else if !mp.video && mp.gen != agen {
				agen = mp.gen
				mux.ResetTrack(false)
			}
			mux.Push(mp.video, mp.pkt)
			r.written.Store(mux.VideoFrames + mux.AudioFrames)
		}
	}
}

// stop ends the muxer and hands the recording to finalize.
func (r *participantRec) stop() {
	select {
	case <-r.quit:
		return
	default:
		close(r.quit)
	}
	<-r.ended
	r.svc.wg.Add(1)
	go func() {
		defer r.svc.wg.Done()
		r.svc.finalize(r)
	}()
}

func (r *participantRec) uploads() []*chunkUpload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*chunkUpload(nil), r.chunks...)
}
