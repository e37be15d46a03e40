package loadtest

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Latency histogram: 50 µs buckets up to 2 s (the last bucket holds
// everything above).
const (
	bucketWidth = 50 * time.Microsecond
	buckets     = 40000
)

type histogram [buckets]uint64

func (h *histogram) add(d time.Duration) {
	i := int(d / bucketWidth)
	if i < 0 {
		i = 0
	}
	if i >= buckets {
		i = buckets - 1
	}
	atomic.AddUint64(&h[i], 1)
}

// copyFrom sets h to a snapshot of src, which add may be changing.
func (h *histogram) copyFrom(src *histogram) {
	for i := range src {
		h[i] = atomic.LoadUint64(&src[i])
	}
}

// quantile returns the q-quantile of the samples in h minus base (the
// bucket's upper edge), and the sample count.
func (h *histogram) quantile(base *histogram, q float64) (time.Duration, uint64) {
	var n uint64
	for i := range h {
		n += h[i] - base[i]
	}
	if n == 0 {
		return 0, 0
	}
	want := uint64(math.Ceil(q * float64(n)))
	var c uint64
	for i := range h {
		c += h[i] - base[i]
		if c >= want {
			return time.Duration(i+1) * bucketWidth, n
		}
	}
	return buckets * bucketWidth, n
}

// stream is what one received track measured: RFC 3550 sequence and
// jitter accounting.
type stream struct {
	run      *runner
	mu       sync.Mutex
	started  bool
	base     uint64 // first extended sequence number
	maxExt   uint64
	received uint64
	bytes    uint64
	jitter   float64 // in clock units
	clock    float64
	lastD    float64
	haveD    bool
}

// add counts a received packet: its sequence number, RTP timestamp and
// size, when it arrived and (if known) when it was sent.
func (s *stream) add(sequence uint16, timestamp uint32, size int, now, sent time.Time, clock float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := uint64(sequence)
	if !s.started {
		s.started, s.base, s.maxExt, s.clock = true, seq, seq, clock
	} else {
		// Extend the 16-bit number around the highest seen.
		cycle := s.maxExt &^ 0xffff
		ext := cycle | seq
		if ext+0x8000 < s.maxExt {
			ext += 0x10000
		} else if ext > s.maxExt+0x8000 && ext >= 0x10000 {
			ext -= 0x10000
		}
		if ext > s.maxExt {
			s.maxExt = ext
		}
	}
	s.received++
	s.bytes += uint64(size) //nolint:gosec // a datagram's size
	// Interarrival jitter (RFC 3550 §6.4.1), in clock units.
	arrival := float64(now.UnixNano()) * clock / 1e9
	d := arrival - float64(timestamp)
	if s.haveD {
		diff := math.Abs(d - s.lastD)
		if diff < clock { // a layer switch or a wrap, not jitter
			s.jitter += (diff - s.jitter) / 16
		}
	}
	s.lastD, s.haveD = d, true
	if !sent.IsZero() {
		s.run.addLatency(now.Sub(sent))
	}
}

// snapshot returns the stream's counters.
func (s *stream) snapshot() (expected, received, bytes uint64, jitterSec float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return 0, 0, 0, 0
	}
	return s.maxExt - s.base + 1, s.received, s.bytes, s.jitter / s.clock
}
