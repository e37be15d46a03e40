// The security page: the signed-in staff member's passkeys — register
// several, name them, rename and remove them (each change audited by the
// server).

import { get, homeFor, post } from './api.js';
import { busy, byId, confirmAction, h, say, when } from './dom.js';
import { createPasskey, passkeyProblem, passkeysSupported } from './passkeys.js';
import { done, problem, startStaffPage } from './staff.js';

/**
 * @typedef {object} PasskeyView
 * @property {string} id
 * @property {string} name
 * @property {string} created_at
 * @property {string} [last_used_at]
 * @property {boolean} synced
 */

const list = byId('passkeys');
const none = byId('none');
const form = byId('add');
const name = /** @type {HTMLInputElement} */ (byId('name'));
const addButton = /** @type {HTMLButtonElement} */ (byId('add-passkey'));

async function refresh() {
  /** @type {{passkeys: PasskeyView[]}} */
  const r = await get('/api/v1/account/passkeys');
  list.replaceChildren(...r.passkeys.map(row));
  none.hidden = r.passkeys.length > 0;
}

/** @param {PasskeyView} p */
function row(p) {
  const label = h('span', { className: 'passkey-name' }, p.name);
  const used = p.last_used_at ? `last used ${when(p.last_used_at)}` : 'not used yet';
  const rename = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: 'rename', aria: { label: `Rename ${p.name}` } }, 'Rename'));
  const remove = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: 'danger remove', aria: { label: `Remove ${p.name}` } }, 'Remove'));
  const renameForm = renameFormFor(p);
  rename.addEventListener('click', () => {
    renameForm.hidden = !renameForm.hidden;
    if (!renameForm.hidden) /** @type {HTMLInputElement} */ (renameForm.querySelector('input')).focus();
  });
  remove.addEventListener('click', () => removePasskey(p, remove));
  return h('li', { className: 'passkey', dataset: { id: p.id } }, label,
    h('span', { className: 'hint' }, ` added ${when(p.created_at)}, ${used}${p.synced ? ', synced' : ''} `), rename, remove, renameForm);
}

/** An inline form to rename p (hidden until Rename is pressed). @param {PasskeyView} p */
function renameFormFor(p) {
  const input = /** @type {HTMLInputElement} */ (h('input', { type: 'text', required: true, maxLength: 64, value: p.name, id: `rename-${p.id}` }));
  const save = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit' }, 'Save name'));
  const f = h('form', { className: 'rename-form', hidden: true },
    h('label', { htmlFor: `rename-${p.id}` }, 'New name'), input, save);
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(save, async () => {
      try {
        await post(`/api/v1/account/passkeys/${encodeURIComponent(p.id)}/rename`, { name: input.value.trim() });
        await refresh();
        done('Passkey renamed.');
      } catch (err) {
        problem(err);
      }
    });
  });
  return f;
}

/** @param {PasskeyView} p @param {HTMLButtonElement} button */
async function removePasskey(p, button) {
  const ok = await confirmAction({ title: 'Remove this passkey?', message: `“${p.name}” will no longer sign you in.`, confirm: 'Remove', danger: true });
  if (!ok) return;
  busy(button, async () => {
    try {
      await post(`/api/v1/account/passkeys/${encodeURIComponent(p.id)}/remove`, {});
      await refresh();
      done('Passkey removed.');
    } catch (err) {
      problem(err);
    }
  });
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  busy(addButton, async () => {
    try {
      const options = await post('/api/v1/account/passkeys/begin', {});
      const credential = await createPasskey(options);
      await post('/api/v1/account/passkeys', { name: name.value.trim(), credential });
      name.value = '';
      await refresh();
      done('Passkey added.');
    } catch (err) {
      const why = passkeyProblem(err);
      if (why) say(byId('error'), why);
      else problem(err);
    }
  });
});

async function main() {
  const started = await startStaffPage(['admin', 'provider']);
  if (!started) return;
  const isAdmin = started.view.kind === 'admin';
  /** @type {HTMLAnchorElement} */ (byId('brand')).href = homeFor(started.view.kind);
  byId('nav-admin').hidden = !isAdmin;
  byId('nav-provider').hidden = isAdmin;
  if (!passkeysSupported) {
    byId('unsupported').hidden = false;
    addButton.disabled = true;
  }
  try {
    await refresh();
  } catch (err) {
    problem(err);
  }
  document.body.dataset.state = 'ready';
}

main();
