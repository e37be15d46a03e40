package sfu

// seenWindow is how many recent sequence numbers a seenSet remembers:
// more than a publisher's retransmission history reaches back at video
// rates (about a second of a 2 Mbps layer).
const seenWindow = 512

// seenSet remembers which of a stream's recent RTP sequence numbers have
// arrived. Each slot holds the last sequence number that mapped to it, so
// nothing needs clearing as the window moves. Owned by one goroutine.
type seenSet struct {
	slot [seenWindow]uint32 // seq | seenValid, 0 = empty
}

const seenValid = 1 << 16

// add records seq and reports whether it is new (not seen in the window).
func (s *seenSet) add(seq uint16) bool {
	v := uint32(seq) | seenValid
	p := &s.slot[seq%seenWindow]
	if *p == v {
		return false
	}
	*p = v
	return true
}
