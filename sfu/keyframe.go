package sfu

// codecKind is what the forwarder needs to know of a track's codec.
type codecKind uint8

const (
	codecAudio codecKind = iota
	codecVP8
	codecH264
)

// keyframe reports whether an RTP payload starts a keyframe, and for VP8
// the frame's width and height (0 when unknown). Audio packets are all
// "keyframes": any of them is a place to start.
func keyframe(c codecKind, p []byte) (ok bool, width, height int) {
	switch c {
	case codecAudio:
		return true, 0, 0
	case codecVP8:
		return vp8Keyframe(p)
	case codecH264:
		return h264Keyframe(p), 0, 0
	}
	return false, 0, 0
}

// vp8Keyframe parses the VP8 payload descriptor (RFC 7741 §4.2) and the
// start of the frame header (RFC 6386 §9.1).
func vp8Keyframe(p []byte) (bool, int, int) {
	if len(p) < 1 {
		return false, 0, 0
	}
	// S (start of partition) set and partition index 0.
	if p[0]&0x10 == 0 || p[0]&0x07 != 0 {
		return false, 0, 0
	}
	i := 1
	if p[0]&0x80 != 0 { // X
		if len(p) < 2 {
			return false, 0, 0
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(p) <= i {
				return false, 0, 0
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K
			i++
		}
	}
	if len(p) <= i || p[i]&0x01 != 0 { // P bit: 0 is a keyframe
		return false, 0, 0
	}
	// 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
	h := p[i:]
	if len(h) < 10 || h[3] != 0x9d || h[4] != 0x01 || h[5] != 0x2a {
		return true, 0, 0
	}
	w := int(h[6]) | int(h[7]&0x3f)<<8
	ht := int(h[8]) | int(h[9]&0x3f)<<8
	return true, w, ht
}

// h264Keyframe reports whether an H.264 payload (RFC 6184) carries an SPS
// or IDR NAL unit at its start: single NAL, STAP-A or the first FU-A.
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch n := p[0] & 0x1f; n {
	case 5, 7:
		return true
	case 24: // STAP-A: 16-bit sizes, then NAL units
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if i+2 >= len(p) || size == 0 {
				return false
			}
			if t := p[i+2] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += 2 + size
		}
	case 28: // FU-A: start bit and original type
		if len(p) < 2 {
			return false
		}
		if p[1]&0x80 != 0 {
			t := p[1] & 0x1f
			return t == 5 || t == 7
		}
	}
	return false
}
