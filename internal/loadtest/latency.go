package loadtest

import (
	"math"
	"slices"
	"time"
)

// percentile returns the q-quantile (0 < q ≤ 1) of ds by the nearest-rank
// method: the smallest value at least q of the samples do not exceed. ds
// is sorted in place; an empty ds gives 0.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(q * float64(len(ds))))
	rank = min(max(rank, 1), len(ds))
	return ds[rank-1]
}

// firstFrame finds, in one received video stream, the first VP8 keyframe
// received whole: its first packet (a keyframe's partition start) and
// every packet after it up to the one with the marker bit, with no gap in
// the sequence numbers — the first frame a decoder could show. A gap
// waits for the next keyframe. Used by one goroutine at a time.
type firstFrame struct {
	started, done bool
	next          uint16
}

// observe takes a packet's sequence number, marker bit and payload (the
// VP8 payload descriptor on) and reports whether it completed the first
// whole keyframe.
func (f *firstFrame) observe(seq uint16, marker bool, payload []byte) bool {
	if f.done {
		return false
	}
	switch {
	case vp8KeyframeStart(payload):
		f.started = true
	case !f.started:
		return false
	case seq != f.next:
		f.started = false // lost or reordered: wait for the next keyframe
		return false
	}
	f.next = seq + 1
	if marker {
		f.done = true
	}
	return f.done
}

// vp8KeyframeStart reports whether payload (RFC 7741: the VP8 payload
// descriptor, then the VP8 payload) starts a keyframe: the start of
// partition 0 whose frame tag has the P bit clear.
func vp8KeyframeStart(p []byte) bool {
	if len(p) < 1 || p[0]&0x10 == 0 || p[0]&0x0f != 0 {
		return false // not the start of partition 0
	}
	i := 1
	if p[0]&0x80 != 0 { // X: an extension byte follows
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: a picture ID of 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/Y/KEYIDX
			i++
		}
	}
	return len(p) > i && p[i]&0x01 == 0
}
