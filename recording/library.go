package recording

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/phi"
	"github.com/openvisit/openvisit/internal/recordings"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/recording/streamaead"
)

// Errors of retrieval.
var (
	ErrDeleted  = errors.New("recording: deleted (its key was destroyed)")
	ErrNotReady = errors.New("recording: chunk not uploaded")
	ErrKEKInUse = errors.New("recording: key-encryption key still wraps stored data keys")
	// ErrMismatch: the object's header is not the one recorded for the
	// chunk (one chunk stands in for another). An integrity failure.
	ErrMismatch = fmt.Errorf("recording: object does not belong to this chunk: %w", streamaead.ErrAuthentication)
	// ErrIntegrityFailed: the chunk failed its integrity check before (it
	// is marked on its row) and is not served again (declared in
	// internal/recordings, which playback reads too).
	ErrIntegrityFailed = recordings.ErrIntegrityFailed
)

// IsIntegrityFailure reports whether err means stored ciphertext failed
// authentication (recordings.IsIntegrityFailure).
func IsIntegrityFailure(err error) bool { return recordings.IsIntegrityFailure(err) }

// FailedSegment returns the segment an integrity failure names, if any
// (recordings.FailedSegment).
func FailedSegment(err error) (uint64, bool) { return recordings.FailedSegment(err) }

// Library decrypts stored recordings for retrieval. It is what the control
// plane holds (with or without the recorder role in the process).
type Library struct {
	Objects *Objects
	Keys    *keys.KeyringFile
	// OnChange, when set, is called (in its own goroutine) after a
	// visit's recording was switched on or off: the recorder follows at
	// once instead of at its next poll.
	OnChange func()
}

// Sync tells the recorder that a recording switch changed.
func (l *Library) Sync() {
	if l != nil && l.OnChange != nil {
		go l.OnChange()
	}
}

// Playback is the decrypted plaintext of one chunk: an io.ReadSeeker for
// http.ServeContent. Only the segments a read touches are fetched (one
// ranged GET each) and authenticated.
type Playback struct {
	*io.SectionReader
	ra *streamaead.ReaderAt
}

// Size is the plaintext size.
func (p *Playback) Size() int64 { return p.ra.PlaintextSize() }

// Close zeroes the reader's buffers.
func (p *Playback) Close() error { return p.ra.Close() }

// Open unwraps the recording's data key and opens chunk ch for reading. It
// authenticates the object's header against the chunk row and the final
// segment (so the size is proven) before returning: no byte is served from
// an object that is not the one recorded. A chunk recovered after a crash
// (Truncated) has no final segment: exactly its recorded plaintext prefix
// is served, each segment authenticated as non-final, and the last of them
// is checked here instead. ctx bounds every read of the returned Playback.
// Integrity failures match IsIntegrityFailure. The chunk is a *Playback;
// Open returns it as an io.ReadSeekCloser, which is all playback needs
// (signaling.RecordingStore).
func (l *Library) Open(ctx context.Context, rec store.Recording, ch store.Chunk) (io.ReadSeekCloser, error) {
	if rec.Status == store.RecDeleted || len(rec.WrappedDEK) == 0 {
		return nil, ErrDeleted
	}
	if ch.Status != store.ChunkComplete {
		return nil, ErrNotReady
	}
	if ch.IntegrityFailedAt != nil {
		return nil, ErrIntegrityFailed
	}
	kr, err := l.Keys.Keyring()
	if err != nil {
		return nil, err
	}
	dek, err := kr.Unwrap(rec.KEKID, rec.WrappedDEK, rec.ID)
	if err != nil {
		return nil, fmt.Errorf("recording: unwrap data key: %w", err)
	}
	defer clear(dek)
	src := l.Objects.ReaderAt(ctx, ch.ObjectKey)
	var header [streamaead.HeaderSize]byte
	if _, err := src.ReadAt(header[:], 0); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("recording: chunk %d header: %w", ch.Seq, streamaead.ErrTruncated)
		}
		return nil, err
	}
	if !bytes.Equal(header[:], ch.Header) {
		return nil, ErrMismatch
	}
	params := streamaead.Params{SegmentSize: rec.SegmentSize}
	var ra *streamaead.ReaderAt
	if ch.Truncated {
		ra, err = streamaead.NewPrefixReaderAt(src, ch.PlaintextSize, dek, []byte(rec.ID), params)
	} else {
		ra, err = streamaead.NewReaderAt(src, ch.Size, dek, []byte(rec.ID), params)
	}
	if err != nil {
		return nil, fmt.Errorf("recording: open chunk %d: %w", ch.Seq, err)
	}
	return &Playback{SectionReader: io.NewSectionReader(ra, 0, ra.PlaintextSize()), ra: ra}, nil
}

// RunRetention deletes recordings past their retention that are not on
// legal hold: in one transaction per recording, the wrapped data key is
// destroyed (the objects become undecryptable at that moment) and the
// deletion audited; then the objects are removed from storage (retried on
// the next run if storage is down). It returns how many recordings it
// deleted.
func (s *Service) RunRetention(ctx context.Context) (int, error) {
	return RunRetention(ctx, s.p.Pool, s.p.Objects, s.p.Now(), "recorder:"+s.p.Node, s.log)
}

// RunRetention is the deletion job (Service.RunRetention without a Service).
func RunRetention(ctx context.Context, pool *pgxpool.Pool, objs *Objects, now time.Time, actor string, log *slog.Logger) (int, error) {
	due, err := store.RecordingsDue(ctx, pool, now, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range due {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			ok, err := store.DestroyRecordingKey(ctx, tx, id, now)
			if err != nil || !ok {
				return err
			}
			n++
			return audit.AppendTx(ctx, tx, audit.Event{
				ActorID: actor, ActorRole: "system", Action: ActionRecordingDelete, ResourceType: "recording",
				ResourceID: id, Outcome: audit.Success, Reason: "retention period ended",
			})
		})
		if err != nil {
			return n, fmt.Errorf("recording: delete %s: %w", id, err)
		}
	}
	chunks, err := store.ChunksToRemove(ctx, pool, 1000)
	if err != nil {
		return n, err
	}
	for _, c := range chunks {
		if err := objs.Remove(ctx, c.ObjectKey); err != nil {
			log.Warn("retention: object not removed yet; retried next run", "recording", c.RecordingID, "err", err)
			continue
		}
		if err := store.MarkChunkRemoved(ctx, pool, c.RecordingID, c.Seq); err != nil {
			return n, err
		}
	}
	return n, nil
}

// RotateKEK adds a new primary KEK to the keyring file and audits it.
func RotateKEK(ctx context.Context, pool *pgxpool.Pool, kf *keys.KeyringFile, actor string, now time.Time) (string, error) {
	kr, err := kf.Keyring()
	if err != nil {
		return "", err
	}
	id, err := kr.Rotate(now)
	if err != nil {
		return "", err
	}
	if err := kf.Save(); err != nil {
		return "", err
	}
	if err := audit.New(pool).Append(ctx, keyEvent(actor, ActionKEKRotate, id, audit.Success, "new primary")); err != nil {
		return id, err
	}
	return id, nil
}

func keyEvent(actor, action, kek string, o audit.Outcome, reason string) audit.Event {
	return audit.Event{ActorID: actor, ActorRole: "operator", Action: action, ResourceType: "kek",
		ResourceID: kek, Outcome: o, Reason: reason}
}

// Rewrap re-wraps every stored data key that is not under the primary KEK
// with the primary: the PHI fields' (rewrapPHI), then the recordings' in
// batches (one transaction and one audit entry per batch). Media objects
// and sealed fields are not touched. It returns how many keys moved.
func Rewrap(ctx context.Context, pool *pgxpool.Pool, kf *keys.KeyringFile, actor string) (int, error) {
	kr, err := kf.Keyring()
	if err != nil {
		return 0, err
	}
	primary := kr.Primary()
	total, err := rewrapPHI(ctx, pool, kr, actor)
	if err != nil {
		return 0, err
	}
	for {
		moved := 0
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			batch, err := store.KeysNotUnder(ctx, tx, primary, 200)
			if err != nil {
				return err
			}
			from := map[string]int{}
			for _, k := range batch {
				newKEK, wrapped, err := kr.Rewrap(k.KEKID, k.WrappedDEK, k.RecordingID)
				if err != nil {
					return fmt.Errorf("recording: rewrap %s: %w", k.RecordingID, err)
				}
				if err := store.ReplaceKey(ctx, tx, k.RecordingID, k.KEKID, newKEK, wrapped); err != nil {
					return err
				}
				from[k.KEKID]++
			}
			moved = len(batch)
			if moved == 0 {
				return nil
			}
			return audit.AppendTx(ctx, tx, keyEvent(actor, ActionKEKRewrap, primary, audit.Success,
				fmt.Sprintf("re-wrapped %d data keys from %v", moved, from)))
		})
		if err != nil {
			return total, err
		}
		total += moved
		if moved == 0 {
			return total, nil
		}
	}
}

// rewrapPHI re-wraps the PHI fields' data keys (phi_data_keys) under the
// primary KEK, in one transaction with its audit entry: they are few (one
// per table per month), and the sealed values are not touched.
func rewrapPHI(ctx context.Context, pool *pgxpool.Pool, kr *keys.Keyring, actor string) (int, error) {
	var moved int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		n, from, err := phi.Rewrap(ctx, tx, kr)
		if err != nil || n == 0 {
			return err
		}
		moved = n
		return audit.AppendTx(ctx, tx, keyEvent(actor, ActionKEKRewrap, kr.Primary(), audit.Success,
			fmt.Sprintf("re-wrapped %d PHI data keys from %v", n, from)))
	})
	if err != nil {
		return 0, fmt.Errorf("recording: rewrap PHI data keys: %w", err)
	}
	return moved, nil
}

// RetireKEK destroys KEK id's key material after an inventory check: it
// refuses (ErrKEKInUse, audited as denied) while any stored data key is
// wrapped under it. The primary cannot be retired.
func RetireKEK(ctx context.Context, pool *pgxpool.Pool, kf *keys.KeyringFile, id, actor string, now time.Time) error {
	log := audit.New(pool)
	usage, err := store.KEKUsage(ctx, pool)
	if err != nil {
		return err
	}
	if n := usage[id]; n > 0 {
		if aerr := log.Append(ctx, keyEvent(actor, ActionKEKRetire, id, audit.Denied, fmt.Sprintf("%d data keys still wrapped under it", n))); aerr != nil {
			return errors.Join(ErrKEKInUse, aerr)
		}
		return fmt.Errorf("%w: %d data keys of recordings or PHI fields (run `openvisit keys rewrap` first)", ErrKEKInUse, n)
	}
	kr, err := kf.Keyring()
	if err != nil {
		return err
	}
	if id == kr.Primary() {
		return errors.New("recording: the primary KEK cannot be retired; rotate first")
	}
	// Audit first: a retirement that cannot be audited does not happen.
	if err := log.Append(ctx, keyEvent(actor, ActionKEKRetire, id, audit.Success, "inventory: no data keys")); err != nil {
		return err
	}
	if err := kr.Retire(id, now); err != nil {
		return err
	}
	return kf.Save()
}
