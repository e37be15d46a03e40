package sfu

import (
	"time"

	"github.com/openvisit/openvisit/sfu/protocol"
)

// allocInterval is how often a subscriber's layers are re-chosen.
const allocInterval = 250 * time.Millisecond

// layerIdle is how long a layer may go without packets before it counts
// as paused by its publisher.
const layerIdle = time.Second

// Pausing unwatched layers (PROTOCOL.md, "Paused layers"): a simulcast
// layer no subscriber has wanted for pauseGrace is paused at the publisher,
// so that its browser stops encoding and sending it. The grace spans a
// layer switch (old and new layer are both wanted until the keyframe) and
// a probe's back-and-forth, so that a layer is not paused and resumed in
// quick succession. A resumed layer counts as sending for resumeWait
// before its first packet: the publisher needs a signaling round trip and
// an encoder restart.
const (
	pauseGrace = 2 * time.Second
	resumeWait = 2 * time.Second
)

// allocLoop re-chooses the subscriber's layers, and pauses or resumes the
// layers of the tracks it publishes, until stop is closed.
func (p *participant) allocLoop(stop <-chan struct{}) {
	defer p.wg.Done()
	tick := time.NewTicker(allocInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			p.allocate()
			p.updateLayers()
		case <-p.layersWake:
			p.updateLayers() // a subscriber wants a paused layer
		}
	}
}

// wakeLayers has p's allocLoop resume wanted layers now instead of at its
// next tick. It never blocks.
func (p *participant) wakeLayers() {
	select {
	case p.layersWake <- struct{}{}:
	default:
	}
}

// flowing tells whether the publisher sends l: a packet within layerIdle,
// or a resume too recent to have produced one.
func (l *layer) flowing(now int64) bool {
	return now-l.lastPacket.Load() <= int64(layerIdle) || now-l.resumedAt.Load() <= int64(resumeWait)
}

// sending tells whether l is not paused and a packet came within
// layerIdle and since its last resume: a packet from before a pause
// tells nothing about when the resumed layer comes.
func (l *layer) sending(now int64) bool {
	last := l.lastPacket.Load()
	return !l.paused.Load() && now-last <= int64(layerIdle) && last > l.resumedAt.Load()
}

// available tells whether layer selection may choose l: it is sent, or
// the SFU paused it (choosing it resumes it; its last bitrate and size
// stand). A layer its publisher stopped by itself is not available.
func (l *layer) available(now int64) bool {
	return l.paused.Load() || l.flowing(now)
}

// simulcast tells whether t's layers can be paused: a video track sent
// with RIDs. Audio and plain video are never paused.
func (t *upTrack) simulcast() bool {
	if !t.video() {
		return false
	}
	for q := range maxLayers {
		if l := t.layer(q); l != nil && l.rid != "" {
			return true
		}
	}
	return false
}

// updatePaused pauses the layers of t no subscriber has wanted for
// pauseGrace and resumes paused layers some subscriber wants. A layer is
// wanted when a subscriber's downTrack forwards it (current) or switches
// to it (target); selection makes that the best layer for layersBest and
// the probed layer during a probe. now is ns since t.start. It reports
// whether the paused set changed and which layers (bit q) were resumed.
// It runs on the owner's allocLoop only, which owns the unwanted fields.
func (t *upTrack) updatePaused(now int64) (changed bool, resumed uint8) {
	if t.closed.Load() || !t.simulcast() {
		return false, 0
	}
	var wanted [maxLayers]bool
	watched := false
	for _, d := range *t.downs.Load() {
		if d.sub.policy.layers == layersBest {
			// It wants the best layer, paused or not; it takes a flowing
			// one until that one comes (selectBestLayer).
			watched = true
			if q := t.highestActiveAt(now); q >= 0 {
				wanted[q] = true
			}
		}
		watched = watched || d.target.Load() >= 0
		for _, q := range [2]int32{d.target.Load(), d.current.Load()} {
			if q >= 0 && int(q) < maxLayers {
				wanted[q] = true
			}
		}
	}
	// While anyone watches, the lowest layer keeps running (about 150
	// kbit/s): a subscriber falls back to it under congestion at once,
	// not after a resume and a keyframe.
	if watched {
		wanted[t.lowestLayer()] = true
	}
	for q := range maxLayers {
		l := t.layer(q)
		if l == nil {
			continue
		}
		switch {
		case wanted[q]:
			l.unwanted = false
			if l.paused.Load() {
				l.resumedAt.Store(now) // before paused clears: no gap in available
				l.paused.Store(false)
				changed = true
				resumed |= 1 << q
			}
		case l.paused.Load():
		case !l.flowing(now):
			// The publisher stopped it itself (its CPU or uplink): pausing
			// saves nothing and would keep it off when the publisher
			// could send it again.
			l.unwanted = false
		case !l.unwanted:
			l.unwanted, l.unwantedSince = true, now
		case now-l.unwantedSince >= int64(pauseGrace):
			l.unwanted = false
			l.paused.Store(true)
			changed = true
		}
	}
	return changed, resumed
}

// pausedRIDs lists the RIDs of t's paused layers, lowest first; never nil.
func (t *upTrack) pausedRIDs() []string {
	out := []string{}
	for q := range maxLayers {
		if l := t.layer(q); l != nil && l.paused.Load() {
			out = append(out, l.rid)
		}
	}
	return out
}

// updateLayers runs updatePaused on each track p publishes and tells p the
// new paused set of each that changed (a layers message; the full state,
// so a lost or repeated one does no harm). A resumed layer gets a keyframe
// request, as a target change does.
func (p *participant) updateLayers() {
	p.mu.Lock()
	ups := make([]*upTrack, 0, len(p.ups))
	for _, t := range p.ups {
		ups = append(ups, t)
	}
	p.mu.Unlock()
	for _, t := range ups {
		p.updateTrackLayers(t, int64(time.Since(t.start)))
	}
}

// updateTrackLayers is updateLayers for one track at now (ns since
// t.start).
func (p *participant) updateTrackLayers(t *upTrack, now int64) {
	changed, resumed := t.updatePaused(now)
	if !changed {
		return
	}
	paused := t.pausedRIDs()
	p.log.Debug("layers paused", "track", t.id, "paused", paused)
	if p.ws != nil && t.mid != "" {
		p.ws.send(protocol.LayersMessage{Type: protocol.TypeLayers, Mid: t.mid, Paused: paused})
	}
	for q := range maxLayers {
		if resumed&(1<<q) != 0 {
			t.requestKeyframe(q, true)
		}
	}
}

// Probing: GCC's estimate cannot grow much past what is being sent, so a
// subscriber held on a low layer would stay there after congestion ends.
// While nothing signals congestion, the allocator tries the next layer up
// (the higher rate is the probe), holds it for probeHold unless congestion
// shows, and backs off (doubling, up to probeBackoffMax) after a failure.
const (
	probeHold        = 3 * time.Second
	probeBackoffMin  = 2 * time.Second
	probeBackoffMax  = 30 * time.Second
	congestionLoss   = 0.10 // GCC's average loss fraction that counts as congestion
	stateOveruse     = "overuse"
	statsUsage       = "usage"
	statsAverageLoss = "averageLoss"
)

// estimate is the subscriber's available bandwidth in bits/s (GCC's target
// from TWCC feedback, capped by SetSubscriberBandwidthCap), whether a cap
// applies, and whether GCC currently sees congestion (delay overuse or
// loss).
func (p *participant) estimate() (bps int64, capped, congested bool) {
	bps = int64(bweMax)
	if p.bwe != nil && p.prep != nil && p.prep.bwe.Load() {
		bps = int64(p.bwe.GetTargetBitrate())
		st := p.bwe.GetStats()
		if u, _ := st[statsUsage].(string); u == stateOveruse {
			congested = true
		}
		if l, _ := st[statsAverageLoss].(float64); l > congestionLoss {
			congested = true
		}
	}
	if c := p.sfu.bwCap.Load(); c > 0 && c < bps {
		bps, capped = c, true
	}
	return bps, capped, congested
}

// allocate splits the estimate over the subscriber's video tracks, after
// what its audio takes, and picks for each the best layer that fits.
func (p *participant) allocate() {
	budget, capped, congested := p.estimate()
	p.mu.Lock()
	videos := make([]*downTrack, 0, len(p.subs))
	for t, d := range p.subs {
		if !t.video() {
			if l := t.layer(0); l != nil {
				budget -= l.bitrate.Load()
			}
			continue
		}
		videos = append(videos, d)
		if p.prep != nil && (t.layer(1) != nil || t.layer(2) != nil) {
			p.prep.bwe.Store(true) // a choice to make: estimate
		}
	}
	p.mu.Unlock()
	if len(videos) == 0 {
		return
	}
	per := budget / int64(len(videos))
	for _, d := range videos {
		d.selectLayer(per, capped, congested)
		// A subscriber waiting for a keyframe (to start, to switch, or
		// after a drop) asks again until it comes: one request can be lost
		// or fall inside another subscriber's rate limit.
		if q, waiting := d.awaitedKeyframe(); waiting {
			d.up.requestKeyframe(q, false)
		}
	}
}

// maxLayerFor returns the largest layer the subscriber's display needs:
// the smallest layer at least as large as the hinted size (layers whose
// size is unknown are not capped), or -1 when the video is not shown.
func (d *downTrack) maxLayerFor() int {
	d.mu.Lock()
	w, h, hinted := d.hintW, d.hintH, d.hinted
	d.mu.Unlock()
	if !hinted {
		return maxLayers - 1
	}
	if w == 0 || h == 0 {
		return -1
	}
	for q := range maxLayers {
		l := d.up.layer(q)
		if l == nil {
			continue
		}
		lw, lh := int(l.width.Load()), int(l.height.Load())
		if lw == 0 {
			return maxLayers - 1
		}
		// A layer within 10% of the displayed size is enough.
		if lw*10 >= w*9 && lh*10 >= h*9 {
			return q
		}
	}
	return maxLayers - 1
}

// selectLayer sets the target layer: the highest available layer within the
// display's need whose bitrate fits budget (going up needs 15% headroom,
// so that the choice does not flap), else the lowest available layer; and,
// without congestion, a probe one layer up now and then. It runs on the
// subscriber's allocator goroutine only, which owns the probe fields.
func (d *downTrack) selectLayer(budget int64, capped, congested bool) {
	d.selectLayerAt(budget, capped, congested, int64(time.Since(d.up.start)))
}

// selectLayerAt is selectLayer at now (ns since up.start).
func (d *downTrack) selectLayerAt(budget int64, capped, congested bool, now int64) {
	t := d.up
	if d.sub.policy.layers == layersBest {
		d.selectBestLayer(now)
		return
	}
	maxQ := d.maxLayerFor()
	cur := int(d.target.Load())
	best, lowest, above := -1, -1, -1
	var aboveNeed int64
	for q := range maxLayers {
		l := t.layer(q)
		if l == nil || !l.available(now) {
			continue
		}
		if lowest < 0 {
			lowest = q
		}
		if q > maxQ {
			continue
		}
		need := l.bitrate.Load()
		if q > cur && above < 0 {
			above, aboveNeed = q, need
		}
		if q > cur {
			need = need * 115 / 100
		}
		if need <= budget {
			best = q
		}
	}
	switch {
	case maxQ < 0:
		best = -1
	case best < 0:
		best = lowest
	}
	if best < 0 && maxQ >= 0 {
		return // no active layer yet: keep the target
	}
	if maxQ >= 0 {
		best = d.probe(best, cur, above, aboveNeed, budget, capped, congested, now)
	}
	d.setTarget(best)
}

// probe adjusts the estimate's choice best: it holds a probe in progress
// (or ends it: congestion fails it, probeHold passing succeeds), or starts
// one a layer above cur when nothing signals congestion.
func (d *downTrack) probe(best, cur, above int, aboveNeed, budget int64, capped, congested bool, now int64) int {
	if d.probeBackoff == 0 {
		d.probeBackoff = probeBackoffMin
	}
	if d.probing {
		switch {
		case congested || (capped && budget < aboveNeed):
			d.probing = false
			d.probeBackoff = min(2*d.probeBackoff, probeBackoffMax)
			d.nextProbe = now + int64(d.probeBackoff)
			return best
		case now-d.probeStart < int64(probeHold):
			return max(best, cur) // hold the probed layer
		default:
			d.probing = false
			d.probeBackoff = probeBackoffMin
		}
		return max(best, cur)
	}
	if congested || above < 0 || best >= above || now < d.nextProbe || (capped && budget < aboveNeed*115/100) {
		return best
	}
	d.probing, d.probeStart = true, now
	d.nextProbe = now + int64(d.probeBackoff)
	return above
}

// setTarget switches to layer q at its next keyframe (asked for now), or
// pauses the subscriber's video (q = -1).
func (d *downTrack) setTarget(q int) {
	d.mu.Lock()
	if int(d.target.Load()) == q {
		d.mu.Unlock()
		return
	}
	d.target.Store(int32(q)) //nolint:gosec // -1..maxLayers-1
	if q < 0 {
		d.current.Store(-1) // paused: resume at a keyframe, rebased
	}
	switchNeeded := q >= 0 && int(d.current.Load()) != q
	d.mu.Unlock()
	d.sub.log.Debug("layer target", "track", d.up.id, "layer", q)
	if switchNeeded {
		if l := d.up.layer(q); l != nil && l.paused.Load() {
			// Resumed by the publisher's allocLoop, woken now; the
			// keyframe request follows the resume.
			d.up.owner.wakeLayers()
		}
		d.up.requestKeyframe(q, false)
	}
}

// setHint records the size at which the subscriber shows the track
// (layer_hint); 0×0 means not shown. The next allocation applies it.
func (d *downTrack) setHint(w, h int) {
	d.mu.Lock()
	d.hintW, d.hintH, d.hinted = w, h, true
	d.mu.Unlock()
}

// highestActive is the highest available layer: sent recently, or paused
// by the SFU (-1: none).
func (t *upTrack) highestActive() int {
	return t.highestActiveAt(int64(time.Since(t.start)))
}

// highestActiveAt is highestActive at now (ns since t.start).
func (t *upTrack) highestActiveAt(now int64) int {
	for q := maxLayers - 1; q >= 0; q-- {
		if l := t.layer(q); l != nil && l.available(now) {
			return q
		}
	}
	return -1
}

// selectBestLayer is layer selection for layersBest (a recorder's). It
// takes the best layer the publisher sends now, whatever bandwidth says:
// a recorder runs next to the SFU. It moves up when a better layer sends,
// and down only when its own layer stopped for layerIdle (a browser short
// of CPU drops its top layers): each switch changes the recorded
// resolution, but a layer that no longer sends would leave the recording
// without video. Starting on a sending layer rather than waiting for a
// paused best one to resume (updatePaused resumes it) keeps the
// recording's first seconds.
func (d *downTrack) selectBestLayer(now int64) {
	q := d.up.highestSendingAt(now)
	cur := int(d.target.Load())
	if q < 0 || q == cur {
		return
	}
	if l := d.up.layer(cur); q > cur || l == nil || !l.sending(now) {
		d.setTarget(q)
	}
}

// highestSendingAt is the highest layer with a packet within layerIdle at
// now (ns since t.start), or -1.
func (t *upTrack) highestSendingAt(now int64) int {
	for q := maxLayers - 1; q >= 0; q-- {
		if l := t.layer(q); l != nil && l.sending(now) {
			return q
		}
	}
	return -1
}
