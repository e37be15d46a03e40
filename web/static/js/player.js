// Synchronised playback of a visit's recordings: one <video> per
// participant recording, side by side, with one play/pause, one seek bar
// and a volume and mute control per participant (every video plays its own
// audio, so both voices are heard).
//
// How the sync works. A recording is a list of chunks, each a complete WebM
// file (no Cues) served with HTTP Range. The chunks' started_at (wall clock,
// when the chunk's first frame was muxed) and duration_ms place every chunk
// of every participant on one timeline, starting at the earliest chunk.
// The player keeps its own clock for that timeline (a position plus the
// wall time since it was set), and each video follows it:
//   - the chunk holding the position is the video's src; the chunk's
//     first buffered media time is its "base" (a chunk's WebM timestamps may
//     start above 0), so timeline position p plays at base + (p - offset);
//   - on every timeupdate and every 250 ms each video's currentTime is
//     compared with where the clock says it should be: more than 0.3 s off,
//     it is seeked there; 0.06 to 0.3 s off, it plays at ±10 % until back in
//     step (drift correction);
//   - a video reaching the end of its chunk gets the next chunk as src;
//     outside any chunk (a participant not recorded yet, a lost chunk) it
//     holds its next chunk preloaded and paused, and says so;
//   - while any video that should play is loading or seeking (readyState
//     below HAVE_FUTURE_DATA) the clock holds still, so nobody runs ahead;
//   - a chunk that fails to load is checked with a one-byte request: if the
//     server answers X-Error-Code: integrity_failed (its stored ciphertext
//     failed authentication — the server aborts a response mid-body when
//     that happens, and refuses the chunk from then on), the player says
//     "This recording failed an integrity check" instead of "could not be
//     loaded"; a chunk already known to have failed is not loaded at all.
// Seeking inside a chunk without Cues makes the browser read the chunk
// progressively up to that point; every Range request is audited server-side.

import { h } from './dom.js';

/**
 * @typedef {object} Chunk
 * @property {number} seq
 * @property {number} size
 * @property {string} status
 * @property {string} started_at
 * @property {string} [ended_at]
 * @property {number} duration_ms
 * @property {string} [media_url]
 * @property {boolean} [truncated]          kept up to a recorder crash (the rest was lost)
 * @property {string} [integrity_failed_at] its stored ciphertext failed authentication
 *
 * @typedef {object} Track  one participant's recording to play
 * @property {string} id     recording ID
 * @property {string} label  "Provider", "Patient"
 * @property {Chunk[]} chunks
 *
 * @typedef {object} Seg
 * @property {number} off  ms from the timeline's start
 * @property {number} dur  ms
 * @property {string} url
 * @property {number} seq
 * @property {boolean} integrity  the chunk failed an integrity check
 *
 * @typedef {object} Lane
 * @property {Track} track
 * @property {Seg[]} segs
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} note
 * @property {HTMLElement} figure
 * @property {Seg|null} current  the chunk loaded in the video (the one playing, or the next one, preloaded)
 * @property {boolean} ready     current's first data and base are known
 * @property {boolean} failed    current could not be loaded
 * @property {number} base       media time (s) of current's first frame
 */

const TICK_MS = 250;
/** What a lane and the status say about a chunk that failed authentication. */
export const INTEGRITY_MESSAGE = 'This recording failed an integrity check: it may have been altered or damaged, so it is not played from here. The failure was logged and administrators were alerted.';
const MAX_DRIFT_S = 0.3;
const NUDGE_S = 0.06;

/** @param {number} ms */
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const hh = Math.floor(m / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(m % 60).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export class SyncPlayer {
  /**
   * @param {object} ui
   * @param {HTMLElement} ui.videos   where the participants' videos go
   * @param {HTMLButtonElement} ui.play
   * @param {HTMLInputElement} ui.seek  type=range, in seconds
   * @param {HTMLElement} ui.time
   * @param {HTMLElement} ui.status    a status region
   * @param {Track[]} tracks
   */
  constructor(ui, tracks) {
    this.ui = ui;
    /** @type {Lane[]} */
    this.lanes = [];
    this.pos = 0; // ms, at this.anchor
    this.anchor = performance.now();
    this.playing = false;
    this.stalled = false;
    this.scrubbing = false;
    this.total = 0;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.timer = undefined;
    this.aborts = new AbortController();

    let t0 = Infinity;
    for (const t of tracks) {
      for (const c of t.chunks) if (c.media_url) t0 = Math.min(t0, Date.parse(c.started_at));
    }
    for (const t of tracks) {
      const segs = t.chunks
        .filter((c) => c.media_url)
        .map((c) => ({ off: Date.parse(c.started_at) - t0, dur: Math.max(0, c.duration_ms), url: /** @type {string} */ (c.media_url), seq: c.seq, integrity: !!c.integrity_failed_at }))
        .sort((a, b) => a.off - b.off);
      for (const s of segs) this.total = Math.max(this.total, s.off + s.dur);
      this.lanes.push(this.makeLane(t, segs));
    }

    const sig = { signal: this.aborts.signal };
    ui.play.addEventListener('click', () => (this.playing ? this.pause() : this.play()), sig);
    ui.seek.max = String(Math.ceil(this.total / 1000));
    ui.seek.value = '0';
    ui.seek.disabled = this.total <= 0;
    ui.play.disabled = this.total <= 0;
    ui.seek.addEventListener('pointerdown', () => { this.scrubbing = true; }, sig);
    for (const e of ['pointerup', 'pointercancel']) ui.seek.addEventListener(e, () => { this.scrubbing = false; }, sig);
    ui.seek.addEventListener('input', () => this.seek(Number(ui.seek.value) * 1000), sig);
    ui.seek.addEventListener('change', () => { this.scrubbing = false; this.seek(Number(ui.seek.value) * 1000); }, sig);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  /** @param {Track} track @param {Seg[]} segs @returns {Lane} */
  makeLane(track, segs) {
    const video = /** @type {HTMLVideoElement} */ (h('video', { playsInline: true, preload: 'auto', muted: false }));
    video.dataset.recording = track.id;
    const note = h('p', { className: 'lane-note', hidden: true });
    const n = this.lanes.length;
    const volID = `vol-${n}`;
    const volume = /** @type {HTMLInputElement} */ (h('input', { id: volID, type: 'range', min: '0', max: '100', step: '5', value: '100' }));
    volume.setAttribute('aria-valuetext', '100 %');
    const mute = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: 'lane-mute', aria: { pressed: 'false' } }, 'Mute', h('span', { className: 'sr-only' }, ` ${track.label}`)));
    const sig = { signal: this.aborts.signal };
    volume.addEventListener('input', () => {
      video.volume = Number(volume.value) / 100;
      volume.setAttribute('aria-valuetext', `${volume.value} %`);
    }, sig);
    mute.addEventListener('click', () => {
      video.muted = !video.muted;
      mute.setAttribute('aria-pressed', String(video.muted));
    }, sig);
    const figure = h('figure', { className: 'player-lane' },
      h('div', { className: 'lane-screen' }, video, note),
      h('figcaption', {}, track.label),
      h('div', { className: 'lane-audio' },
        mute,
        h('div', { className: 'field' }, h('label', { htmlFor: volID }, `${track.label} volume`), volume)));
    this.ui.videos.append(figure);
    /** @type {Lane} */
    const lane = { track, segs, video, note, figure, current: null, ready: false, failed: false, base: 0 };
    video.addEventListener('timeupdate', () => this.tick(), sig);
    video.addEventListener('loadeddata', () => this.loaded(lane), sig);
    video.addEventListener('error', () => {
      const seg = lane.current;
      if (!seg) return;
      lane.failed = true;
      lane.ready = true; // do not hold the others back
      this.tick();
      this.check(seg);
    }, sig);
    return lane;
  }

  /** The timeline position now, in ms. */
  now() {
    if (!this.playing || this.stalled) return this.pos;
    return Math.min(this.total, this.pos + (performance.now() - this.anchor));
  }

  /** @param {number} ms */
  setPos(ms) {
    this.pos = Math.max(0, Math.min(this.total, ms));
    this.anchor = performance.now();
  }

  play() {
    if (this.now() >= this.total) this.setPos(0);
    else this.setPos(this.now());
    this.playing = true;
    this.ui.play.textContent = 'Pause';
    // Start the videos inside the click, where playing with sound is allowed.
    const p = this.now();
    for (const l of this.lanes) {
      if (l.current && l.ready && !l.failed && this.segAt(l, p) === l.current) l.video.play().catch(() => {});
    }
    this.tick();
  }

  pause() {
    this.setPos(this.now());
    this.playing = false;
    this.ui.play.textContent = 'Play';
    for (const l of this.lanes) l.video.pause();
    this.tick();
  }

  /** @param {number} ms */
  seek(ms) {
    this.setPos(ms);
    for (const l of this.lanes) {
      if (l.current && l.ready) l.video.currentTime = this.mediaTime(l, l.current, this.pos);
    }
    this.tick();
  }

  /** @param {Lane} l @param {Seg} s @param {number} p */
  mediaTime(l, s, p) {
    return l.base + Math.max(0, p - s.off) / 1000;
  }

  /** @param {Lane} l @param {number} p @returns {Seg|null} */
  segAt(l, p) {
    for (const s of l.segs) if (p >= s.off && p < s.off + s.dur) return s;
    // The last moment of the timeline belongs to the chunk that ends there.
    const last = l.segs[l.segs.length - 1];
    if (last && p >= this.total && last.off + last.dur >= this.total) return last;
    return null;
  }

  /** @param {Lane} l @param {string} text */
  noteFor(l, text) {
    if (l.note.textContent !== text) l.note.textContent = text;
    l.note.hidden = !text;
  }

  /** The first chunk after p (to preload). @param {Lane} l @param {number} p @returns {Seg|null} */
  nextSeg(l, p) {
    for (const s of l.segs) if (s.off > p) return s;
    return null;
  }

  /**
   * Asks the server why a chunk failed to load: one byte, audited like any
   * playback request. @param {Seg} seg
   */
  async check(seg) {
    try {
      const res = await fetch(seg.url, { headers: { Range: 'bytes=0-0' }, cache: 'no-store', credentials: 'same-origin', signal: this.aborts.signal });
      if (res.body) res.body.cancel().catch(() => {});
      if (res.headers.get('X-Error-Code') === 'integrity_failed') {
        seg.integrity = true;
        this.tick();
      }
    } catch {
      // Offline or closed: the lane already says it could not be loaded.
    }
  }

  /** @param {Lane} l @param {Seg|null} s */
  load(l, s) {
    l.current = s;
    l.ready = false;
    l.failed = false;
    l.base = 0;
    if (!s || s.integrity) {
      // Nothing to load, or a chunk the server refuses: it failed an integrity check.
      l.failed = !!s;
      l.ready = !!s;
      l.video.pause();
      l.video.removeAttribute('src');
      l.video.load();
      return;
    }
    l.video.src = s.url;
  }

  /** The chunk's first data is in: learn its base time, seek, follow. @param {Lane} l */
  loaded(l) {
    const s = l.current;
    if (!s || l.ready) return;
    const v = l.video;
    l.base = v.buffered.length ? v.buffered.start(0) : 0;
    l.ready = true;
    v.currentTime = this.mediaTime(l, s, this.now());
    this.tick();
  }

  tick() {
    let p = this.now();
    if (this.playing && p >= this.total) {
      this.pause();
      p = this.pos;
    }
    let waiting = false;
    for (const l of this.lanes) {
      const s = this.segAt(l, p);
      // Outside its chunks a video holds the next chunk, loaded and paused at its start.
      const target = s || this.nextSeg(l, p);
      if (target !== l.current) this.load(l, target);
      const v = l.video;
      if (!s) {
        if (!v.paused) v.pause();
        if (l.ready && !l.failed && !v.seeking && target && Math.abs(v.currentTime - l.base) > 0.05) v.currentTime = l.base;
        this.noteFor(l, l.failed ? this.failure(l)
          : !target ? 'Not recorded at this point.'
            : target.off - p > 1000 ? `Recorded from ${clock(target.off)}.` : '');
        continue;
      }
      this.noteFor(l, l.failed ? this.failure(l)
        : l.ready && v.readyState >= HTMLMediaElement.HAVE_METADATA && v.videoWidth === 0 ? 'Audio only in this part.' : '');
      if (!l.ready || l.failed) {
        waiting = waiting || !l.ready;
        continue;
      }
      if (v.readyState < HTMLMediaElement.HAVE_FUTURE_DATA && !v.ended) waiting = true;
      const want = this.mediaTime(l, s, p);
      if (this.playing && !this.stalled) {
        if (v.paused && !v.ended) v.play().catch(() => {});
        // Far off: seek. A little off: play slightly faster or slower until
        // back in step. (A chunk's media may end a little before its
        // duration_ms: let it.)
        const drift = v.currentTime - want;
        if (!v.seeking && !(v.ended && want > v.currentTime) && Math.abs(drift) > MAX_DRIFT_S) v.currentTime = want;
        const rate = Math.abs(drift) < NUDGE_S ? 1 : drift < 0 ? 1.1 : 0.9;
        if (v.playbackRate !== rate) v.playbackRate = rate;
      } else {
        if (!v.paused) v.pause();
        if (!v.seeking && Math.abs(v.currentTime - want) > 0.05) v.currentTime = want;
      }
    }
    // Hold the clock while a video that should play is not ready to.
    if (waiting !== this.stalled) {
      if (waiting) {
        this.pos = this.now();
        this.stalled = true;
      } else {
        this.stalled = false;
        this.anchor = performance.now();
      }
    }
    this.show(this.now());
  }

  /** What a lane that could not play says. @param {Lane} l */
  failure(l) {
    return l.current && l.current.integrity ? INTEGRITY_MESSAGE : 'This part of the recording could not be loaded.';
  }

  /** @param {number} p */
  show(p) {
    const text = `${clock(p)} / ${clock(this.total)}`;
    if (this.ui.time.textContent !== text) this.ui.time.textContent = text;
    if (!this.scrubbing) this.ui.seek.value = String(Math.floor(p / 1000));
    this.ui.seek.setAttribute('aria-valuetext', `${clock(p)} of ${clock(this.total)}`);
    const integrity = this.lanes.some((l) => l.failed && l.current && l.current.integrity);
    const status = integrity ? INTEGRITY_MESSAGE : this.playing && this.stalled ? 'Loading…' : '';
    if (this.ui.status.textContent !== status) this.ui.status.textContent = status;
  }

  /** Stops playback and releases the videos. */
  destroy() {
    clearInterval(this.timer);
    this.aborts.abort();
    for (const l of this.lanes) {
      l.video.pause();
      l.video.removeAttribute('src');
      l.video.load();
      l.figure.remove();
    }
    this.lanes = [];
    this.ui.play.textContent = 'Play';
  }
}
