package recording

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
)

// TrackSummary describes one track of a WebM file.
type TrackSummary struct {
	CodecID   string
	Frames    int
	Keyframes int
	Bytes     int64
	FirstMS   int64 // timestamp of the first frame, ms
	LastMS    int64 // timestamp of the last frame, ms
}

// Inspection summarises a WebM file: its tracks and their frames.
type Inspection struct {
	Tracks []TrackSummary
}

// Track returns the summary of the first track with codecID.
func (in Inspection) Track(codecID string) (TrackSummary, bool) {
	for _, t := range in.Tracks {
		if t.CodecID == codecID {
			return t, true
		}
	}
	return TrackSummary{}, false
}

// InspectWebM parses a (streamed, Cue-less) WebM file with ebml-go and
// summarises every track's frames. Tests and operator tools use it to check
// a decrypted recording.
func InspectWebM(r io.Reader) (in Inspection, err error) {
	var fatal error
	var fmu sync.Mutex
	onFatal := mkvcore.WithOnFatalHandler(func(e error) {
		fmu.Lock()
		if fatal == nil {
			fatal = e
		}
		fmu.Unlock()
	})
	readers, err := mkvcore.NewSimpleBlockReader(r, onFatal)
	if err != nil {
		return in, fmt.Errorf("recording: not a WebM file: %w", err)
	}
	if len(readers) == 0 {
		return in, errors.New("recording: WebM file has no tracks")
	}
	in.Tracks = make([]TrackSummary, len(readers))
	var wg sync.WaitGroup
	for i, rd := range readers {
		in.Tracks[i].CodecID = rd.TrackEntry().CodecID
		wg.Add(1)
		go func(i int, rd mkvcore.BlockReadCloserWithTrackEntry) {
			defer wg.Done()
			t := &in.Tracks[i]
			for {
				b, key, ts, err := rd.Read()
				if err != nil {
					return
				}
				if t.Frames == 0 {
					t.FirstMS = ts
				}
				t.Frames++
				t.Bytes += int64(len(b))
				if key {
					t.Keyframes++
				}
				t.LastMS = ts
			}
		}(i, rd)
	}
	wg.Wait()
	if fatal != nil {
		return in, fmt.Errorf("recording: WebM parse: %w", fatal)
	}
	return in, nil
}

// InspectWebMPrefix is InspectWebM for a file that may stop mid-element:
// the authenticated prefix of a chunk recovered after a crash, cut where
// the last whole encrypted segment ended. It summarises what parses before
// the cut.
func InspectWebMPrefix(r io.Reader) (Inspection, error) {
	in, err := InspectWebM(r)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return in, nil
	}
	return in, err
}

// Span returns the media time the file covers: from the first frame of any
// track to the last frame of any track (0 without frames).
func (in Inspection) Span() time.Duration {
	first, last, any := int64(0), int64(0), false
	for _, t := range in.Tracks {
		if t.Frames == 0 {
			continue
		}
		if !any || t.FirstMS < first {
			first = t.FirstMS
		}
		if !any || t.LastMS > last {
			last = t.LastMS
		}
		any = true
	}
	return time.Duration(last-first) * time.Millisecond
}
