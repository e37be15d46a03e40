package sfu

import (
	"testing"

	"github.com/pion/rtp"
)

// vp8KeyStart and vp8Delta are the starts of a VP8 keyframe (640×360) and
// of an interframe.
var (
	vp8KeyStart = []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01}
	vp8Delta    = []byte{0x10, 0x01, 0x00, 0x00, 0x00}
)

// repairRig is a simulcast track with two layers whose subscriber queues
// what it would send (no writer), so that a test reads the numbering.
type repairRig struct {
	t    *testing.T
	d    *downTrack
	pkts [maxLayers]rtp.Packet
}

func newRepairRig(t *testing.T) *repairRig {
	t.Helper()
	d := newLayeredTrack(t, []int64{150_000, 500_000}, []int32{320, 640})
	d.up.downs.Store(&[]*downTrack{d})
	d.bound = true
	d.ring = make([]slot, 64)
	d.clock = 90000
	return &repairRig{t: t, d: d}
}

// send has layer q forward a packet with the publisher's number seq.
func (r *repairRig) send(q int, seq uint16, key bool) {
	r.t.Helper()
	payload := vp8Delta
	if key {
		payload = vp8KeyStart
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: uint32(100 + q)}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	var c forwardCounters
	r.d.up.layer(q).forwardPacket(&r.pkts[q], b, &c)
}

// sent returns the sequence numbers queued to the subscriber, and empties
// the queue.
func (r *repairRig) sent() []uint16 {
	d := r.d
	var out []uint16
	for ; d.count > 0; d.count-- {
		out = append(out, d.ring[d.head].hdr.SequenceNumber)
		d.head = (d.head + 1) % len(d.ring)
	}
	return out
}

func (r *repairRig) expect(what string, want ...uint16) {
	r.t.Helper()
	got := r.sent()
	if len(got) != len(want) {
		r.t.Fatalf("%s: sent %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			r.t.Fatalf("%s: sent %v, want %v", what, got, want)
		}
	}
}

// TestRepairNeverSwitchesLayers: an old keyframe packet that comes again
// (Chrome's probing resends old packets over RTX, and Pion hands them over
// as the originals) or late must not start a layer switch: rebasing on it
// would put the packets after it ahead by the difference, a gap of numbers
// never sent that the subscriber asks for in vain (NACK) and freezes on
// until its next keyframe.
func TestRepairNeverSwitchesLayers(t *testing.T) {
	r := newRepairRig(t)
	r.d.target.Store(0)
	r.send(0, 1000, true)
	r.send(0, 1001, false)
	r.expect("layer 0 starts with the publisher's numbering", 1000, 1001)

	r.send(1, 5000, true) // layer 1's keyframe passes by, before the switch
	r.send(1, 5001, false)
	r.expect("nothing from layer 1: not asked for yet")
	r.d.setTarget(1)
	r.send(1, 5000, true) // the same keyframe packet again: a probe
	r.send(0, 1002, false)
	r.expect("a probe resending an old keyframe does not switch", 1002)

	// A repair of a keyframe packet this node missed is no switching
	// point either: the rest of that keyframe went by unforwarded.
	r.send(1, 5021, false) // 5020 missed
	r.send(1, 5020, true)  // late
	r.send(0, 1003, false)
	r.expect("a repaired old keyframe start does not switch", 1003)

	r.send(1, 5040, true)
	r.send(1, 5041, false)
	r.expect("a new keyframe switches, numbering continues", 1004, 1005)
	if cur := r.d.current.Load(); cur != 1 {
		t.Fatalf("current layer %d, want 1", cur)
	}
}

// TestRepairFillsGaps: a late packet (the retransmission of one this node
// missed) is forwarded under the number the original would have had; a
// packet already forwarded is not forwarded again; a packet older than the
// switch to this layer is not forwarded (its number belongs to the other
// layer's segment).
func TestRepairFillsGaps(t *testing.T) {
	r := newRepairRig(t)
	r.d.target.Store(0)
	r.send(0, 10, true)
	r.send(0, 11, false)
	r.send(0, 13, false) // 12 lost on the way in
	r.expect("before repair", 10, 11, 13)
	r.send(0, 12, false) // retransmitted
	r.expect("the repair fills the gap", 12)
	r.send(0, 11, false)
	r.expect("a resend of what arrived is a probe, dropped")

	r.d.setTarget(1)
	r.send(1, 500, true)
	r.send(1, 501, false)
	r.expect("switched to layer 1", 14, 15)
	r.send(1, 499, false)
	r.send(1, 499, false)
	r.expect("packets from before the switch are dropped, late or repaired")
	r.send(1, 503, false)
	r.send(1, 502, false)
	r.expect("after the switch, repair works", 17, 16)
}

// TestSenderStartsOver: a publisher whose numbering jumps far back (a
// restarted encoder) is followed, not taken for one long-late packet.
func TestSenderStartsOver(t *testing.T) {
	r := newRepairRig(t)
	r.d.target.Store(0)
	r.send(0, 30000, true)
	r.send(0, 30001, false)
	r.send(0, 100, false)
	r.send(0, 101, false)
	r.expect("the stream goes on", 30000, 30001, 30002, 30003)
}

// TestLateLimitSlides: a long run on one layer keeps forwarding past the
// serial-number half range (the segment start slides along).
func TestLateLimitSlides(t *testing.T) {
	r := newRepairRig(t)
	r.d.target.Store(0)
	seq := uint16(65000)
	for i := range 70000 {
		r.send(0, seq, i == 0)
		if got := r.sent(); len(got) != 1 {
			t.Fatalf("packet %d (seq %d): sent %v, want one", i, seq, got)
		}
		seq++
	}
}
