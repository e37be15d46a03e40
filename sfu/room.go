package sfu

import (
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// room is one visit on this node. Its fields are guarded by SFU.mu; a room
// exists while it has participants.
type room struct {
	id           ids.VisitID
	participants map[ids.ParticipantID]*participant
	tracks       map[*upTrack]struct{} // published by participants of this room
}

func (r *room) others(p *participant) []*participant {
	out := make([]*participant, 0, len(r.participants))
	for _, o := range r.participants {
		if o != p {
			out = append(out, o)
		}
	}
	return out
}

// join adds p to its room, first removing an older participant with the same
// ID (which is closed with `duplicate`). It sends `joined` to p and
// `participant_joined` to the others. Messages are queued under s.mu, so that
// every participant sees joins and leaves in one order.
func (s *SFU) join(p *participant) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		r := s.rooms[p.visit]
		if r == nil {
			r = &room{
				id:           p.visit,
				participants: make(map[ids.ParticipantID]*participant),
				tracks:       make(map[*upTrack]struct{}),
			}
			s.rooms[p.visit] = r
		}
		if old := r.participants[p.id]; old != nil {
			s.mu.Unlock()
			// Synchronous, so that the others see the old one leave before
			// the new one joins.
			old.kick(closeReason{code: protocol.CodeDuplicate})
			continue
		}
		r.participants[p.id] = p
		others := r.others(p)
		list := make([]protocol.Participant, 0, len(others))
		for _, o := range others {
			if !o.policy.hidden {
				list = append(list, o.info())
			}
		}
		p.ws.send(protocol.JoinedMessage{Type: protocol.TypeJoined, Self: p.info(), Participants: list})
		if !p.policy.hidden {
			info := p.info()
			for _, o := range others {
				o.ws.send(protocol.ServerMessage{Type: protocol.TypeParticipantJoined, Participant: &info})
			}
		}
		s.mu.Unlock()
		return nil
	}
}

// removeParticipant takes p out of its room: its tracks are unpublished
// (the others renegotiate), the others get `participant_left`, and an empty
// room is deleted. It is idempotent.
func (s *SFU) removeParticipant(p *participant) {
	s.mu.Lock()
	r := s.rooms[p.visit]
	if r == nil || r.participants[p.id] != p {
		s.mu.Unlock()
		return
	}
	delete(r.participants, p.id)
	var gone []*upTrack
	for t := range r.tracks {
		if t.owner == p {
			t.closed.Store(true)
			delete(r.tracks, t)
			gone = append(gone, t)
		}
	}
	others := r.others(p)
	if !p.policy.hidden {
		info := p.info()
		for _, o := range others {
			o.ws.send(protocol.ServerMessage{Type: protocol.TypeParticipantLeft, Participant: &info})
		}
	}
	if len(r.participants) == 0 {
		delete(s.rooms, r.id)
	}
	s.mu.Unlock()
	if len(gone) > 0 {
		for _, o := range others {
			o.unsubscribe(gone)
		}
	}
}

// publish makes t available in its owner's room and subscribes everyone
// else. It returns false when the owner is no longer in the room.
func (s *SFU) publish(t *upTrack) bool {
	p := t.owner
	s.mu.Lock()
	r := s.rooms[p.visit]
	if r == nil || r.participants[p.id] != p {
		s.mu.Unlock()
		return false
	}
	r.tracks[t] = struct{}{}
	others := r.others(p)
	s.mu.Unlock()
	for _, o := range others {
		o.subscribe([]*upTrack{t})
	}
	return true
}

// unpublish withdraws t (its read loop ended) from every subscriber.
func (s *SFU) unpublish(t *upTrack) {
	p := t.owner
	s.mu.Lock()
	r := s.rooms[p.visit]
	if r == nil {
		s.mu.Unlock()
		return
	}
	if _, ok := r.tracks[t]; !ok {
		s.mu.Unlock()
		return
	}
	t.closed.Store(true)
	delete(r.tracks, t)
	others := r.others(p)
	s.mu.Unlock()
	for _, o := range others {
		o.unsubscribe([]*upTrack{t})
	}
}

// tracksFor returns the tracks p should receive: everyone else's.
func (s *SFU) tracksFor(p *participant) []*upTrack {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[p.visit]
	if r == nil {
		return nil
	}
	out := make([]*upTrack, 0, len(r.tracks))
	for t := range r.tracks {
		if t.owner != p {
			out = append(out, t)
		}
	}
	return out
}
