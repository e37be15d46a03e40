// The development mail outbox (/outbox): the mail this server would have
// sent (invites with their calendar files), kept because it runs in
// development without an SMTP server. Providers see the mail they sent,
// admins all of it. The server audits every list and read; production has
// neither this page nor its API.

import { APIError, describe, get, homeFor } from './api.js';
import { byId, h, say, when } from './dom.js';
import { startStaffPage } from './staff.js';

/**
 * @typedef {object} Attachment
 * @property {number} n
 * @property {string} name
 * @property {string} content_type
 * @property {number} size
 *
 * @typedef {object} Message
 * @property {string} id
 * @property {string} created_at
 * @property {string} to
 * @property {string} subject
 * @property {string} [body]
 * @property {Attachment[]} attachments
 */

const ui = {
  brand: /** @type {HTMLAnchorElement} */ (byId('brand')),
  home: /** @type {HTMLAnchorElement} */ (byId('nav-home')),
  error: byId('error'),
  refresh: /** @type {HTMLButtonElement} */ (byId('refresh')),
  listStatus: byId('list-status'),
  messages: byId('messages'),
  message: byId('message'),
  subject: byId('message-subject'),
  to: byId('message-to'),
  at: byId('message-at'),
  body: byId('message-body'),
  attachments: byId('message-attachments'),
  close: /** @type {HTMLButtonElement} */ (byId('message-close')),
};

/** @param {unknown} err */
function problem(err) {
  if (err instanceof APIError && err.status === 401) return; // on the way to /signin
  say(ui.error, describe(err));
}

/** @param {string} id */
const base = (id) => `/api/v1/dev/outbox/${encodeURIComponent(id)}`;

/** @param {number} n */
function size(n) {
  return n < 1024 ? `${n} bytes` : `${(n / 1024).toFixed(1)} KB`;
}

async function list() {
  say(ui.error, '');
  /** @type {{messages: Message[]}} */
  const r = await get('/api/v1/dev/outbox');
  ui.messages.replaceChildren(...r.messages.map((m) => h('li', { className: 'item', dataset: { messageId: m.id } },
    h('p', { className: 'item-title' },
      h('button', { type: 'button', className: 'link', dataset: { action: 'open' } }, m.subject || '(no subject)')),
    h('p', {}, 'To ', h('span', { className: 'mono' }, m.to), ` · ${when(m.created_at)}`),
    m.attachments.length ? h('p', {}, ...m.attachments.map((a) => h('span', { className: 'tag' }, a.name))) : null,
  )));
  ui.listStatus.textContent = r.messages.length
    ? `${r.messages.length} message${r.messages.length === 1 ? '' : 's'}, newest first.`
    : 'No mail yet. Email a patient their visit link from the schedule and it appears here.';
}

/** @param {string} id */
async function open(id) {
  say(ui.error, '');
  /** @type {Message} */
  const m = await get(base(id));
  ui.message.dataset.messageId = m.id;
  ui.subject.textContent = m.subject;
  ui.to.textContent = m.to;
  ui.at.textContent = when(m.created_at);
  ui.body.textContent = m.body || '';
  ui.attachments.replaceChildren(...(m.attachments.length ? m.attachments.map((a) => h('li', {},
    h('a', { href: `${base(m.id)}/attachments/${a.n}`, download: a.name, dataset: { attachment: String(a.n) } }, `Download ${a.name}`),
    ` (${a.content_type.split(';')[0]}, ${size(a.size)})`,
  )) : [h('li', {}, 'None.')]));
  ui.message.hidden = false;
  ui.message.focus();
}

ui.messages.addEventListener('click', (ev) => {
  const t = /** @type {HTMLElement} */ (ev.target);
  const li = /** @type {HTMLElement|null} */ (t.closest('li[data-message-id]'));
  if (t.closest('[data-action="open"]') && li) open(li.dataset.messageId || '').catch(problem);
});
ui.refresh.addEventListener('click', () => list().catch(problem));
ui.close.addEventListener('click', () => {
  ui.message.hidden = true;
  ui.refresh.focus();
});

async function main() {
  const s = await startStaffPage(['admin', 'provider']);
  if (!s) return;
  ui.brand.href = ui.home.href = homeFor(s.view.kind);
  ui.home.textContent = s.view.kind === 'admin' ? 'Users and alerts' : 'Schedule';
  try {
    await list();
  } catch (err) {
    problem(err);
  }
  document.body.dataset.loaded = 'true';
}

main();
