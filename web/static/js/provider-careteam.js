// The provider page's care team panel (issue 17): a one-time link for a
// caregiver or an interpreter (each their own, withdrawn on its own), the
// list of a visit's invitations, and guest providers (another staff
// account that runs the visit with you). Names and emails typed here are
// PHI: they go to the server only, never to the console or the address bar.

import { APIError, get, post } from './api.js';
import { busy, byId, h, say, when } from './dom.js';

const ROLE = /** @type {Record<string, string>} */ ({ patient: 'Patient', caregiver: 'Caregiver', interpreter: 'Interpreter' });

const ui = {
  panel: byId('team-panel'),
  form: /** @type {HTMLFormElement} */ (byId('team-form')),
  role: /** @type {HTMLSelectElement} */ (byId('team-role')),
  name: /** @type {HTMLInputElement} */ (byId('team-name')),
  email: /** @type {HTMLInputElement} */ (byId('team-email')),
  send: /** @type {HTMLInputElement} */ (byId('team-send')),
  add: /** @type {HTMLButtonElement} */ (byId('team-add')),
  linkField: byId('team-link-field'),
  link: /** @type {HTMLInputElement} */ (byId('team-link')),
  list: byId('team-list'),
  guestForm: /** @type {HTMLFormElement} */ (byId('guest-form')),
  guestEmail: /** @type {HTMLInputElement} */ (byId('guest-email')),
  guestAdd: /** @type {HTMLButtonElement} */ (byId('guest-add')),
  status: byId('team-status'),
  close: /** @type {HTMLButtonElement} */ (byId('team-close')),
};

/**
 * @typedef {object} Invitee
 * @property {string} invite_id
 * @property {string} role
 * @property {string} [name]
 * @property {string} [email]
 * @property {string} created_at
 * @property {string} [used_at]
 * @property {string} [revoked_at]
 */

/** @param {string} visit */
const base = (visit) => `/api/v1/visits/${encodeURIComponent(visit)}`;

/** Opens the panel for visit. @param {string} visit */
export async function openCareTeam(visit) {
  ui.panel.dataset.visit = visit;
  ui.linkField.hidden = true;
  ui.link.value = '';
  say(ui.status, '');
  ui.panel.hidden = false;
  ui.panel.focus();
  await list(visit);
}

/** @param {string} visit */
async function list(visit) {
  try {
    const r = /** @type {{invitees: Invitee[]}} */ (await get(base(visit) + '/invitees'));
    ui.list.replaceChildren(...r.invitees.map((iv) => item(visit, iv)));
  } catch (err) {
    say(ui.status, err instanceof Error ? err.message : 'The invitations could not be loaded.');
  }
}

/** @param {string} visit @param {Invitee} iv */
function item(visit, iv) {
  const state = iv.revoked_at ? 'withdrawn' : iv.used_at ? `used ${when(iv.used_at)}` : `created ${when(iv.created_at)}`;
  const who = `${ROLE[iv.role] || iv.role}${iv.name ? ': ' + iv.name : ''}`;
  const li = h('li', { className: 'item', dataset: { inviteId: iv.invite_id, role: iv.role } }, h('p', {}, `${who} — ${state}`));
  if (!iv.revoked_at) {
    const b = h('button', { type: 'button', className: 'danger', dataset: { action: 'revoke' } }, 'Withdraw', h('span', { className: 'sr-only' }, ' the link of ' + who));
    b.addEventListener('click', () => busy(/** @type {HTMLButtonElement} */ (b), async () => {
      try {
        await post(base(visit) + `/invitees/${encodeURIComponent(iv.invite_id)}/revoke`, {});
        say(ui.status, 'The link was withdrawn; the other links still work.');
      } catch (err) {
        say(ui.status, err instanceof Error ? err.message : 'The link could not be withdrawn.');
      }
      await list(visit);
    }));
    li.append(b);
  }
  return li;
}

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const visit = ui.panel.dataset.visit || '';
  busy(ui.add, async () => {
    try {
      const r = /** @type {{invite_url: string, emailed: boolean}} */ (await post(base(visit) + '/invitees', {
        role: ui.role.value, name: ui.name.value.trim(), email: ui.email.value.trim(), send_email: ui.send.checked,
      }));
      ui.link.value = r.invite_url;
      ui.linkField.hidden = false;
      ui.name.value = '';
      ui.email.value = '';
      say(ui.status, r.emailed ? 'The link was emailed.' : 'Copy the link and send it yourself.');
    } catch (err) {
      say(ui.status, err instanceof APIError && err.code === 'no_smtp' ? err.message : err instanceof Error ? err.message : 'The link could not be created.');
    }
    await list(visit);
  });
});

ui.guestForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const visit = ui.panel.dataset.visit || '';
  busy(ui.guestAdd, async () => {
    try {
      await post(base(visit) + '/guests', { email: ui.guestEmail.value.trim() });
      ui.guestEmail.value = '';
      say(ui.status, 'The guest provider now has this visit on their schedule and can admit, record and end it.');
    } catch (err) {
      say(ui.status, err instanceof Error ? err.message : 'The guest provider could not be added.');
    }
  });
});

ui.close.addEventListener('click', () => {
  ui.panel.hidden = true;
  ui.link.value = '';
});
