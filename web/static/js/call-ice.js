// The call page's honest connection states. When the video connection
// cannot be made, the page says what was tried — a direct connection over
// UDP, over TCP, the clinic's relay (TURN), from the client's ICE report
// (its candidate pairs and the ICE servers of the join grant) — and what
// the user can do: another network, and the clinic's help line (from the
// join grant's `help`, config clinic.help_text / clinic.help_phone).
// It does not say "reconnecting" about a call that never connected.
//
// And, for the provider: the patient's media connection in the waiting
// panel, as the media node reports it (participants[].media_state of the
// visit state events), never as the patient's page claims it.

import { byId, h } from './dom.js';
import { t } from './i18n.js';

/**
 * @typedef {{text?: string, phone?: string}} Help
 * @typedef {import('./client.js').IceReport} IceReport
 */

/**
 * What a report tried, as words a patient can act on and pass on to the
 * clinic. Keys are stable (tests and CSS read them from data-tried).
 * @param {IceReport|null} r
 * @returns {{keys: string[], tried: string, missing: string}}
 */
export function describeTried(r) {
  /** @type {[string, string][]} [stable key, catalogue key] */
  const parts = [];
  if (r && r.udp) parts.push(['udp', 'call.ice.part.udp']);
  if (r && r.tcp) parts.push(['tcp', 'call.ice.part.tcp']);
  if (r && r.relay === 'tried') parts.push(['turn', 'call.ice.part.turn']);
  if (r && r.relay === 'unreachable') parts.push(['turn-unreachable', 'call.ice.part.turn_unreachable']);
  const words = parts.map((p) => t(p[1]));
  const tried = words.length === 0 ? t('call.ice.tried_none')
    : words.length === 1 ? t('call.ice.tried_one', { what: words[0] })
      : t('call.ice.tried_many', { list: words.slice(0, -1).join(', '), last: words[words.length - 1] });
  const noTCP = !!r && r.offered.tcp === 0 && !r.tcp;
  const noRelay = !!r && r.relay === 'off';
  const missing = noTCP && noRelay ? t('call.ice.missing.both') : noTCP ? t('call.ice.missing.tcp') : noRelay ? t('call.ice.missing.relay') : '';
  return { keys: parts.map((p) => p[0]), tried, missing };
}

/**
 * Shows (or, with report undefined, hides) the "could not connect" panel.
 * @param {IceReport|null|undefined} report
 * @param {Help|null} help
 */
export function showIceHelp(report, help) {
  const panel = byId('ice-help');
  if (report === undefined) {
    panel.hidden = true;
    return;
  }
  const d = describeTried(report);
  panel.dataset.tried = d.keys.join(' ');
  byId('ice-tried').textContent = d.missing ? `${d.tried} ${d.missing}` : d.tried;
  const clinic = byId('ice-clinic');
  const text = help && help.text ? help.text : '';
  const phone = help && help.phone ? help.phone : '';
  clinic.replaceChildren();
  if (text) clinic.append(text);
  if (phone) {
    if (text) clinic.append(' ');
    // tel: with the digits only; the number is the clinic's, from config.
    clinic.append(h('a', { href: 'tel:' + phone.replace(/[^0-9+]/g, '') }, phone));
  }
  if (!text && !phone) clinic.append(t('call.ice.contact'));
  panel.hidden = false;
}

/** Words for a participant's media state in the provider's waiting panel. */
const MEDIA_STATE = /** @type {Record<string, [string, string]>} */ ({
  connecting: ['Connecting…', ''],
  connected: ['Video connected', ' tag-ok'],
  disconnected: ['Connection interrupted', ' tag-warn'],
  failed: ['Could not connect (network)', ' tag-danger'],
  left: ['Not in the call', ''],
});

/** A failure this recent makes "connecting" read "trying again" (ms). */
const RECENT_FAILURE = 2 * 60_000;

/**
 * A tag for a patient's media connection, as the media node reported it;
 * null before their first join. A patient whose attempt failed and who is
 * trying again shows that, not a plain "Connecting…".
 * @param {{media_state?: string, media_failed_at?: string}} p
 * @returns {HTMLElement|null}
 */
export function mediaStateTag(p) {
  const state = p.media_state || '';
  let w = MEDIA_STATE[state];
  if (!w) return null;
  const failedAt = p.media_failed_at ? Date.parse(p.media_failed_at) : NaN;
  const retrying = state === 'connecting' && Date.now() - failedAt < RECENT_FAILURE;
  if (retrying) w = ['Could not connect; trying again', ' tag-danger'];
  return h('span', { className: 'tag media-state' + w[1], dataset: { mediaState: state, failedBefore: retrying ? '1' : '' } }, w[0]);
}
