package loadtest

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The recorded media every simulated participant publishes, looped:
// 4 s of 1280×720 VP8 at 30 fps, ≈1.8 Mbit/s (keyframe every 2 s), and
// 4 s of Opus at 32 kbit/s in 20 ms frames, one frame per Ogg page. Made
// with ffmpeg (see README.md, "Load test").
//
//go:embed testdata/video-720p.ivf testdata/audio.ogg
var mediaFS embed.FS

// frame is one encoded video frame or audio packet and how long it lasts.
type frame struct {
	data []byte
	dur  time.Duration
}

// clip is a looped recording: its frames and clock rate.
type clip struct {
	frames []frame
	clock  uint32
}

func loadVideo() (clip, error) {
	b, err := mediaFS.ReadFile("testdata/video-720p.ivf")
	if err != nil {
		return clip{}, err
	}
	r, h, err := ivfreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return clip{}, fmt.Errorf("loadtest: ivf: %w", err)
	}
	if h.TimebaseNumerator == 0 || h.TimebaseDenominator == 0 {
		return clip{}, errors.New("loadtest: ivf: no timebase")
	}
	per := time.Duration(float64(time.Second) * float64(h.TimebaseNumerator) / float64(h.TimebaseDenominator))
	c := clip{clock: 90000}
	for {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return clip{}, fmt.Errorf("loadtest: ivf frame: %w", err)
		}
		c.frames = append(c.frames, frame{data: f, dur: per})
	}
	if len(c.frames) == 0 {
		return clip{}, errors.New("loadtest: ivf: no frames")
	}
	return c, nil
}

func loadAudio() (clip, error) {
	b, err := mediaFS.ReadFile("testdata/audio.ogg")
	if err != nil {
		return clip{}, err
	}
	r, _, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return clip{}, fmt.Errorf("loadtest: ogg: %w", err)
	}
	c := clip{clock: 48000}
	var last uint64
	for {
		p, h, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return clip{}, fmt.Errorf("loadtest: ogg page: %w", err)
		}
		if _, ok := h.HeaderType(p); ok {
			continue // OpusHead, OpusTags
		}
		d := time.Duration(h.GranulePosition-last) * time.Second / 48000
		last = h.GranulePosition
		if d <= 0 || d > 120*time.Millisecond {
			d = 20 * time.Millisecond
		}
		c.frames = append(c.frames, frame{data: p, dur: d})
	}
	if len(c.frames) == 0 {
		return clip{}, errors.New("loadtest: ogg: no packets")
	}
	return c, nil
}
