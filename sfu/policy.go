package sfu

import "github.com/openvisit/openvisit/internal/token"

// policy is how the SFU treats one participant, taken from its join
// token's role once, when it joins (policyFor): the one place where a role
// becomes behaviour. Rooms, forwarding and layer selection read the
// policy, never the role. The zero policy is a patient's or a provider's.
type policy struct {
	// hidden: the others are not told the participant is there (it is not
	// in their joined list, and no participant_joined or _left names it).
	hidden bool
	// listenOnly: what the participant sends is not forwarded.
	listenOnly bool
	// layers is how its video layers are chosen.
	layers layerChoice
}

// layerChoice is how a subscriber's simulcast layer is chosen.
type layerChoice uint8

const (
	// layersFit: the best layer that fits the subscriber's bandwidth
	// estimate and display size (layer_hint), probing upwards now and
	// then; it starts on the lowest layer (selectLayerAt).
	layersFit layerChoice = iota
	// layersBest: the best layer the publisher sends, whatever bandwidth
	// or display size say, for a subscriber that runs next to the SFU. It
	// starts on the best layer sending now, moves up when a better one
	// sends, and down only when its own stopped (selectBestLayer). The best
	// layer counts as wanted even while paused, so that it is resumed
	// (updatePaused).
	layersBest
)

// policyFor is the policy of a participant admitted with role.
func policyFor(role token.Role) policy {
	switch role {
	case token.RoleRecorder:
		// A silent subscriber that records the best of every track.
		return policy{hidden: true, listenOnly: true, layers: layersBest}
	default:
		return policy{layers: layersFit}
	}
}
