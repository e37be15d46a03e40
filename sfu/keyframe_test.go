package sfu

import "testing"

func TestLayerHintDecode(t *testing.T) {
	for _, c := range []struct {
		name, msg string
		ok        bool
	}{
		{"hint", `{"type":"layer_hint","track":"video-3","width":320,"height":180}`, true},
		{"not shown", `{"type":"layer_hint","track":"video-3","width":0,"height":0}`, true},
		{"negative", `{"type":"layer_hint","track":"video-3","width":-1,"height":180}`, false},
		{"huge", `{"type":"layer_hint","track":"video-3","width":20000,"height":180}`, false},
		{"no track", `{"type":"layer_hint","width":1,"height":1}`, false},
		{"empty track", `{"type":"layer_hint","track":"","width":1,"height":1}`, false},
		{"missing height", `{"type":"layer_hint","track":"video-3","width":1}`, false},
		{"foreign field", `{"type":"layer_hint","track":"video-3","width":1,"height":1,"sdp":"x"}`, false},
		{"hint fields on leave", `{"type":"leave","width":1}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeMessage([]byte(c.msg))
			if (err == nil) != c.ok {
				t.Fatalf("decode: %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestKeyframe(t *testing.T) {
	vp8Key := []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01} // 640×360
	vp8KeyPicID := []byte{0x90, 0x80, 0x81, 0x23, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}
	for _, c := range []struct {
		name  string
		codec codecKind
		p     []byte
		kf    bool
		w, h  int
	}{
		{"vp8 keyframe", codecVP8, vp8Key, true, 640, 360},
		{"vp8 keyframe with picture id", codecVP8, vp8KeyPicID, true, 320, 180},
		{"vp8 delta", codecVP8, []byte{0x10, 0x01, 0x00, 0x00}, false, 0, 0},
		{"vp8 not a partition start", codecVP8, []byte{0x00, 0x00}, false, 0, 0},
		{"vp8 second partition", codecVP8, []byte{0x11, 0x00}, false, 0, 0},
		{"vp8 truncated", codecVP8, []byte{0x90}, false, 0, 0},
		{"vp8 empty", codecVP8, nil, false, 0, 0},
		{"h264 idr", codecH264, []byte{0x65, 0x88}, true, 0, 0},
		{"h264 sps", codecH264, []byte{0x67, 0x42}, true, 0, 0},
		{"h264 non-idr", codecH264, []byte{0x41, 0x9a}, false, 0, 0},
		{"h264 stap-a with sps", codecH264, []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true, 0, 0},
		{"h264 fu-a idr start", codecH264, []byte{0x7c, 0x85, 0x00}, true, 0, 0},
		{"h264 fu-a idr middle", codecH264, []byte{0x7c, 0x05, 0x00}, false, 0, 0},
		{"h264 stap-a truncated", codecH264, []byte{0x78, 0xff, 0xff}, false, 0, 0},
		{"audio", codecAudio, []byte{0x01}, true, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			kf, w, h := keyframe(c.codec, c.p)
			if kf != c.kf || w != c.w || h != c.h {
				t.Fatalf("keyframe = %v %d×%d, want %v %d×%d", kf, w, h, c.kf, c.w, c.h)
			}
		})
	}
}

// FuzzKeyframe: payloads come from the network; the parsers must not
// panic or report sizes beyond 14 bits.
func FuzzKeyframe(f *testing.F) {
	f.Add(uint8(codecVP8), []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01})
	f.Add(uint8(codecVP8), []byte{0x90, 0xe0, 0x81, 0x23, 0x01, 0x02})
	f.Add(uint8(codecH264), []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce})
	f.Add(uint8(codecH264), []byte{0x7c, 0x85})
	f.Fuzz(func(t *testing.T, c uint8, p []byte) {
		_, w, h := keyframe(codecKind(c%3), p)
		if w < 0 || w >= 1<<14 || h < 0 || h >= 1<<14 {
			t.Fatalf("size %d×%d", w, h)
		}
	})
}
