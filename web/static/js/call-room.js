// The provider's waiting-room panel on the call page: who is waiting or
// admitted (with their media connection as the media node reports it),
// admit / turn away / remove, and "End visit for everyone". It renders the
// visit state events (visit-events.js) that call.js follows.

import { post } from './api.js';
import { roleText } from './call-grid.js';
import { mediaStateTag } from './call-ice.js';
import { byId, confirmAction, h, say } from './dom.js';

/** The roles that come in by invite and wait to be admitted. */
const INVITEES = new Set(['patient', 'caregiver', 'interpreter']);

/**
 * @typedef {object} RoomOptions
 * @property {() => string} visit
 * @property {import('./call-tiles.js').Tiles} tiles  their captions show the patient's name
 * @property {() => boolean} callOver  no call to wait for the server's close of (closed, failed, none)
 * @property {(title: string, reason: string) => void} ended  shows the end of the visit
 */

/** @typedef {import('./visit-events.js').VisitParticipant} VisitParticipant */

export class WaitingRoom {
  /** @param {RoomOptions} o */
  constructor(o) {
    /** @private */ this.o = o;
    /** the provider ended the visit for everyone (the server's close that follows is expected) */
    this.endedByMe = false;
    /** @private */ this.ui = {
      patient: byId('room-patient'),
      empty: byId('room-empty'),
      list: byId('room-list'),
      status: byId('room-status'),
      endVisit: /** @type {HTMLButtonElement} */ (byId('end-visit')),
    };
    this.ui.endVisit.addEventListener('click', () => this.endVisit());
  }

  /** @param {import('./visit-events.js').VisitState} st */
  render(st) {
    const ui = this.ui;
    ui.patient.textContent = st.patient_name ? `Patient: ${st.patient_name}` : '';
    for (const t of this.o.tiles.byId.values()) {
      if (t.tile.dataset.role === 'patient' && st.patient_name) t.caption.textContent = st.patient_name;
    }
    // Every invitee: the patient, a caregiver, an interpreter (each by role).
    const people = (st.participants || []).filter((p) => INVITEES.has(p.role) && (p.state === 'waiting' || p.state === 'admitted'));
    ui.empty.hidden = people.some((p) => p.state === 'waiting');
    ui.empty.textContent = people.length ? 'Nobody else is waiting.' : 'Nobody is waiting.';
    ui.list.replaceChildren(...people.map((p) => this.item(p, p.role === 'patient' ? st.patient_name || roleText(p.role) : roleText(p.role))));
  }

  /** @private @param {VisitParticipant} p @param {string} name */
  item(p, name) {
    const since = p.state === 'waiting' && p.waiting_at ? `waiting since ${new Date(p.waiting_at).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' })}` : 'admitted to the call';
    // The patient's connection as the media node reports it (not their page).
    const media = p.state === 'admitted' ? mediaStateTag(p) : null;
    const li = h('li', { className: 'item', dataset: { pid: p.id, state: p.state, role: p.role, mediaState: p.media_state || '' } },
      h('p', { className: 'item-title' }, name, ' ', h('span', { className: 'tag' + (p.state === 'waiting' ? ' tag-warn' : ' tag-ok') }, p.state === 'waiting' ? 'Waiting' : 'Admitted'),
        media ? ' ' : '', media),
      h('p', { className: 'hint' }, since));
    const actions = h('div', { className: 'actions' });
    const act = (/** @type {string} */ action, /** @type {string} */ label, /** @type {string} */ cls) => {
      const b = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: cls, dataset: { action } }, label, h('span', { className: 'sr-only' }, ` ${name}`)));
      b.addEventListener('click', () => this.participantAction(p.id, action, name));
      actions.append(b);
    };
    if (p.state === 'waiting') {
      act('admit', 'Admit', 'primary');
      act('turn-away', 'Turn away', '');
    } else {
      act('remove', 'Remove', 'danger');
    }
    li.append(actions);
    return li;
  }

  /** @private @param {string} pid @param {string} action @param {string} name */
  async participantAction(pid, action, name) {
    if (action !== 'admit') {
      const yes = await confirmAction({
        title: action === 'remove' ? 'Remove the patient?' : 'Turn the patient away?',
        message: action === 'remove'
          ? `${name} leaves the call at once and cannot rejoin with this link.`
          : `${name} is told you cannot see them now, and cannot rejoin with this link.`,
        confirm: action === 'remove' ? 'Remove' : 'Turn away',
        danger: true,
      });
      if (!yes) return;
    }
    try {
      await post(`/api/v1/visits/${encodeURIComponent(this.o.visit())}/participants/${encodeURIComponent(pid)}/${action}`, {});
      say(this.ui.status, action === 'admit' ? `${name} admitted.` : action === 'remove' ? `${name} removed.` : `${name} turned away.`);
    } catch (err) {
      say(this.ui.status, err instanceof Error ? err.message : 'That did not work.');
    }
  }

  /** @private */
  async endVisit() {
    const yes = await confirmAction({
      title: 'End the visit for everyone?',
      message: 'Everyone leaves the call and the patient\'s link stops working.',
      confirm: 'End visit',
      danger: true,
    });
    if (!yes) return;
    this.endedByMe = true;
    try {
      await post(`/api/v1/visits/${encodeURIComponent(this.o.visit())}/end`, {});
    } catch (err) {
      this.endedByMe = false;
      say(this.ui.status, err instanceof Error ? err.message : 'The visit could not be ended.');
      return;
    }
    // The server closes every socket with 4010; the closed handler shows the end.
    if (this.o.callOver()) this.o.ended('The visit has ended', 'You ended the visit for everyone.');
  }
}
