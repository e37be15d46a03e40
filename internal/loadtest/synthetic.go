package loadtest

import (
	"crypto/rand"
	"encoding/binary"
)

// SyntheticVP8 returns a VP8-shaped frame of size bytes (at least 10):
// random bytes, where a keyframe carries the frame tag, the start code and
// a 640x360 size as an encoder writes them, so that the SFU's keyframe
// detection and the WebM muxer treat it as real video.
func SyntheticVP8(key bool, size int) []byte {
	b := make([]byte, max(size, 10))
	_, _ = rand.Read(b)
	if key {
		b[0] = 0x10 // keyframe bit clear, show_frame set
		b[3], b[4], b[5] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(b[6:8], 640)
		binary.LittleEndian.PutUint16(b[8:10], 360)
	} else {
		b[0] = 0x11
	}
	return b
}
