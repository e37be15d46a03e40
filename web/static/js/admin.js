// The admin page: staff accounts (invite, role, disable/enable, unlock,
// reset sign-in), security alerts, visit event webhooks with their delivery
// log, and emergency access grants to review.

import { get, post } from './api.js';
import { busy, byId, confirmAction, copy, h, say, shortID, when } from './dom.js';
import { done, problem, startStaffPage } from './staff.js';

/**
 * @typedef {object} User
 * @property {string} id
 * @property {string} email
 * @property {string} name
 * @property {'provider'|'admin'} role
 * @property {boolean} mfa_enrolled
 * @property {boolean} password_set
 * @property {boolean} locked
 * @property {boolean} disabled
 * @property {number} failed_logins
 * @property {string} created_at
 * @property {string} [last_signin_at]  absent: never signed in
 *
 * @typedef {object} Alert
 * @property {string} id
 * @property {string} kind
 * @property {string} severity
 * @property {string} subject
 * @property {string} detail
 * @property {string} created_at
 * @property {string} [acknowledged_at]
 *
 * @typedef {object} Grant
 * @property {string} id
 * @property {string} user_id
 * @property {string} visit_id
 * @property {string} reason
 * @property {string} granted_at
 * @property {string} expires_at
 * @property {string} [reviewed_at]
 */

const ui = {
  status: byId('status'),
  error: byId('error'),
  invite: byId('invite'),
  inviteEmail: /** @type {HTMLInputElement} */ (byId('invite-email')),
  inviteName: /** @type {HTMLInputElement} */ (byId('invite-name')),
  inviteRole: /** @type {HTMLSelectElement} */ (byId('invite-role')),
  inviteSubmit: /** @type {HTMLButtonElement} */ (byId('invite-submit')),
  linkPanel: byId('link-panel'),
  linkText: byId('link-text'),
  link: /** @type {HTMLInputElement} */ (byId('setup-link')),
  copyLink: /** @type {HTMLButtonElement} */ (byId('copy-link')),
  linkDone: /** @type {HTMLButtonElement} */ (byId('link-done')),
  copyStatus: byId('copy-status'),
  usersLoading: byId('users-loading'),
  usersRefresh: /** @type {HTMLButtonElement} */ (byId('users-refresh')),
  users: byId('users'),
  usersBody: byId('users-body'),
  alerts: byId('alerts'),
  alertsEmpty: byId('alerts-empty'),
  alertsRefresh: /** @type {HTMLButtonElement} */ (byId('alerts-refresh')),
  webhooks: byId('webhooks'),
  webhooksEmpty: byId('webhooks-empty'),
  deliveries: byId('deliveries'),
  deliveriesEmpty: byId('deliveries-empty'),
  webhooksRefresh: /** @type {HTMLButtonElement} */ (byId('webhooks-refresh')),
  grants: byId('grants'),
  grantsEmpty: byId('grants-empty'),
  grantsRefresh: /** @type {HTMLButtonElement} */ (byId('grants-refresh')),
};

let selfID = '';
/** @type {Map<string, User>} */
const usersByID = new Map();

/** A user's display name. @param {User|undefined} u */
function label(u) {
  if (!u) return 'a user';
  return u.name || u.email;
}

/** A button whose accessible name adds who it acts on. @param {string} text @param {string} who @param {Record<string, any>} props */
function actionButton(text, who, props) {
  return /** @type {HTMLButtonElement} */ (h('button', { type: 'button', ...props }, text, h('span', { className: 'sr-only' }, ` (${who})`)));
}

/** @param {User} u */
function statusBadges(u) {
  const out = [];
  if (u.disabled) out.push(h('span', { className: 'tag tag-danger' }, 'Disabled'));
  if (u.locked) out.push(h('span', { className: 'tag tag-warn' }, `Locked (${u.failed_logins} failed sign-ins)`));
  if (!u.mfa_enrolled) out.push(h('span', { className: 'tag' }, 'Setup pending'));
  if (!out.length) out.push(h('span', { className: 'tag tag-ok' }, 'Active'));
  return out;
}

/** @param {User} u */
function actionsFor(u) {
  if (u.id === selfID) return [h('span', { className: 'hint' }, 'This is you')];
  const who = label(u);
  /** @type {HTMLButtonElement[]} */
  const out = [];
  if (u.disabled) {
    out.push(actionButton('Enable', who, { dataset: { action: 'enable' }, onclick: () => act(u, 'enable') }));
  } else {
    out.push(actionButton('Disable', who, { className: 'danger', dataset: { action: 'disable' }, onclick: () => act(u, 'disable') }));
  }
  if (u.locked) {
    out.push(actionButton('Unlock', who, { dataset: { action: 'unlock' }, onclick: () => act(u, 'unlock') }));
  }
  const other = u.role === 'admin' ? 'provider' : 'admin';
  out.push(actionButton(other === 'admin' ? 'Make admin' : 'Make provider', who, { dataset: { action: 'role' }, onclick: () => act(u, 'role', other) }));
  out.push(actionButton('Reset sign-in', who, { dataset: { action: 'reset-mfa' }, onclick: () => act(u, 'reset-mfa') }));
  return out;
}

/** @param {User[]} users */
function renderUsers(users) {
  usersByID.clear();
  for (const u of users) usersByID.set(u.id, u);
  ui.usersBody.replaceChildren(...users.map((u) => h('tr', { role: 'row', dataset: { userId: u.id, email: u.email } },
    h('td', { role: 'cell', dataset: { label: 'Name' } }, u.name || '—'),
    h('td', { role: 'cell', className: 'email', dataset: { label: 'Email' } }, u.email),
    h('td', { role: 'cell', dataset: { label: 'Role' } }, u.role === 'admin' ? 'Admin' : 'Provider'),
    h('td', { role: 'cell', dataset: { label: 'Status' } }, ...statusBadges(u)),
    h('td', { role: 'cell', className: 'last-signin', dataset: { label: 'Last sign-in' } }, u.last_signin_at ? when(u.last_signin_at) : 'Never'),
    h('td', { role: 'cell', dataset: { label: 'Actions' } }, h('div', { className: 'row-actions' }, ...actionsFor(u))))));
  ui.usersLoading.hidden = true;
  ui.users.hidden = false;
}

async function loadUsers() {
  /** @type {{users: User[]}} */
  const r = await get('/api/v1/admin/users');
  renderUsers(r.users || []);
  await loadDormant();
}

/** The accounts that can sign in but have not for the configured days. */
async function loadDormant() {
  /** @type {{days: number, users: User[]}} */
  const r = await get('/api/v1/admin/users/dormant');
  byId('dormant-days').textContent = String(r.days);
  const list = byId('dormant');
  list.replaceChildren(...(r.users || []).map((u) => h('li', { dataset: { userId: u.id } },
    `${u.name || u.email} (${u.email}) — `, u.last_signin_at ? `last signed in ${when(u.last_signin_at)}` : 'never signed in')));
  byId('dormant-none').hidden = (r.users || []).length > 0;
}

/** What each action asks and says. */
const ACTIONS = {
  disable: {
    confirm: (/** @type {string} */ who) => ({ title: `Disable ${who}?`, message: 'They are signed out everywhere at once and removed from any call they are in. You can enable the account again later.', confirm: 'Disable', danger: true }),
    done: (/** @type {string} */ who) => `${who} is disabled and signed out everywhere.`,
  },
  enable: { confirm: null, done: (/** @type {string} */ who) => `${who} is enabled.` },
  unlock: { confirm: null, done: (/** @type {string} */ who) => `${who} is unlocked and can sign in again.` },
  role: {
    confirm: (/** @type {string} */ who, /** @type {string} */ role) => ({ title: `Make ${who} ${role === 'admin' ? 'an admin' : 'a provider'}?`, message: 'They are signed out everywhere; the new role applies when they sign in again.', confirm: 'Change role', danger: false }),
    done: (/** @type {string} */ who) => `${who}'s role is changed; they are signed out.`,
  },
  'reset-mfa': {
    confirm: (/** @type {string} */ who) => ({ title: `Reset sign-in for ${who}?`, message: 'Their authenticator and recovery codes stop working and they are signed out everywhere. You get a new setup link to send them.', confirm: 'Reset sign-in', danger: true }),
    done: (/** @type {string} */ who) => `${who}'s sign-in is reset. Send them the new setup link.`,
  },
};

/**
 * Runs an action on a user, after confirmation when it is destructive.
 * @param {User} u
 * @param {keyof typeof ACTIONS} action
 * @param {string} [role]
 */
async function act(u, action, role) {
  const who = label(u);
  const spec = ACTIONS[action];
  if (spec.confirm && !(await confirmAction(spec.confirm(who, role || '')))) return;
  const row = ui.usersBody.querySelector(`tr[data-user-id="${CSS.escape(u.id)}"]`);
  const button = /** @type {HTMLButtonElement|null} */ (row && row.querySelector(`[data-action="${action}"]`));
  const run = async () => {
    try {
      const path = `/api/v1/admin/users/${encodeURIComponent(u.id)}/${action}`;
      const r = await post(path, action === 'role' ? { role } : {});
      done(spec.done(who));
      if (action === 'reset-mfa' && r && r.setup_link) {
        showLink(r.setup_link, `Send this one-time link to ${who} (${u.email}) by a channel you trust. It lets them set up their authenticator again. It is shown only once.`);
      }
      await loadUsers();
    } catch (err) {
      problem(err);
    }
    refocus(u.id);
  };
  if (button) await busy(button, run);
  else await run();
}

/** After a re-render, puts the focus back in the user's row. @param {string} id */
function refocus(id) {
  if (!ui.linkPanel.hidden && ui.linkPanel.contains(document.activeElement)) return;
  const row = ui.usersBody.querySelector(`tr[data-user-id="${CSS.escape(id)}"]`);
  const b = /** @type {HTMLElement|null} */ (row && row.querySelector('button'));
  if (b && (!document.activeElement || document.activeElement === document.body)) b.focus();
}

/** @param {string} link @param {string} text */
function showLink(link, text) {
  ui.link.value = link;
  ui.linkText.textContent = text;
  say(ui.copyStatus, '');
  ui.linkPanel.hidden = false;
  ui.linkPanel.focus();
}

ui.copyLink.addEventListener('click', () => copy(ui.link.value, ui.copyStatus, ui.link));
ui.linkDone.addEventListener('click', () => {
  ui.link.value = '';
  ui.linkPanel.hidden = true;
  ui.inviteEmail.focus();
});

ui.invite.addEventListener('submit', (ev) => {
  ev.preventDefault();
  busy(ui.inviteSubmit, async () => {
    try {
      /** @type {{user: User, setup_link: string}} */
      const r = await post('/api/v1/admin/users', {
        email: ui.inviteEmail.value.trim(),
        name: ui.inviteName.value.trim(),
        role: ui.inviteRole.value,
      });
      done(`Account created for ${label(r.user)}.`);
      ui.inviteEmail.value = '';
      ui.inviteName.value = '';
      showLink(r.setup_link, `Send this one-time link to ${label(r.user)} (${r.user.email}) by a channel you trust: it lets them choose a password and set up their authenticator. It is shown only once.`);
      await loadUsers();
    } catch (err) {
      problem(err);
      ui.inviteEmail.focus();
    }
  });
});

/**
 * The action that closes an item of a review list (an alert, a grant):
 * posts to path, says text, reloads the list and leaves the focus on the
 * list's Refresh button (the item's own button is gone).
 * @param {string} label @param {string} what  the item, for screen readers
 * @param {string} path @param {string} text
 * @param {() => Promise<void>} reload @param {HTMLButtonElement} refresh
 */
function reviewAction(label, what, path, text, reload, refresh) {
  const b = actionButton(label, what, {});
  b.addEventListener('click', () => busy(b, async () => {
    try {
      await post(path, {});
      done(text);
      await reload();
      refresh.focus();
    } catch (err) {
      problem(err);
    }
  }));
  return h('div', { className: 'actions' }, b);
}

const ALERT_KINDS = /** @type {Record<string, string>} */ ({
  account_locked: 'Account locked',
  break_glass: 'Emergency access used',
});

/** @param {Alert[]} alerts */
function renderAlerts(alerts) {
  // Open alerts first, newest first within each group.
  alerts.sort((a, b) => Number(!!a.acknowledged_at) - Number(!!b.acknowledged_at) || b.created_at.localeCompare(a.created_at));
  ui.alertsEmpty.hidden = alerts.length > 0;
  ui.alerts.replaceChildren(...alerts.map((a) => {
    const subject = usersByID.get(a.subject);
    const item = h('li', { className: 'item' + (a.acknowledged_at ? ' done' : ''), dataset: { alertId: a.id } },
      h('p', { className: 'item-title' },
        h('span', { className: 'tag ' + (a.severity === 'critical' ? 'tag-danger' : a.severity === 'warning' ? 'tag-warn' : '') }, a.severity),
        ' ', ALERT_KINDS[a.kind] || a.kind.replace(/_/g, ' ')),
      h('p', {}, a.detail),
      h('p', { className: 'hint' }, `${when(a.created_at)}${subject ? ' · ' + label(subject) : ''}`,
        a.acknowledged_at ? ` · acknowledged ${when(a.acknowledged_at)}` : ''));
    if (!a.acknowledged_at && a.subject && a.subject === selfID) {
      item.append(h('p', { className: 'hint' }, 'This alert is about you: another admin acknowledges it (or, in a clinic with one admin, the operator on the server).'));
    }
    if (!a.acknowledged_at) {
      item.append(reviewAction('Acknowledge', `${ALERT_KINDS[a.kind] || a.kind}, ${when(a.created_at)}`,
        `/api/v1/admin/alerts/${encodeURIComponent(a.id)}/ack`, 'Alert acknowledged.', loadAlerts, ui.alertsRefresh));
    }
    return item;
  }));
}

async function loadAlerts() {
  /** @type {{alerts: Alert[]}} */
  const r = await get('/api/v1/admin/alerts');
  renderAlerts(r.alerts || []);
}

/**
 * @typedef {object} Webhook
 * @property {string} id
 * @property {string} url
 * @property {string[]} kinds
 * @property {boolean} may_receive_phi
 * @property {string} created_at
 * @property {string} [disabled_at]
 *
 * @typedef {object} Attempt
 * @property {number} attempt
 * @property {string} at
 * @property {number} status_code
 * @property {string} [error_class]
 *
 * @typedef {object} Delivery
 * @property {number} id
 * @property {string} subscription_id
 * @property {string} kind
 * @property {string} visit_id
 * @property {string} occurred_at
 * @property {'pending'|'delivered'|'failed'} status
 * @property {Attempt[]} attempt_log
 */

/** @param {Webhook[]} subs @param {Delivery[]} log */
function renderWebhooks(subs, log) {
  ui.webhooksEmpty.hidden = subs.length > 0;
  ui.webhooks.replaceChildren(...subs.map((w) => h('li', { className: 'item' + (w.disabled_at ? ' done' : '') },
    h('p', { className: 'item-title mono' }, w.url),
    h('p', {}, w.kinds.join(', '), w.may_receive_phi ? ' · may receive PHI' : ' · IDs only'),
    h('p', { className: 'hint' }, `Created ${when(w.created_at)}`, w.disabled_at ? ` · disabled ${when(w.disabled_at)}` : '',
      ` · ${shortID(w.id)}`))));
  ui.deliveriesEmpty.hidden = log.length > 0;
  ui.deliveries.replaceChildren(...log.map((d) => h('li', { className: 'item' + (d.status === 'delivered' ? ' done' : '') },
    h('p', { className: 'item-title' },
      h('span', { className: 'tag ' + (d.status === 'failed' ? 'tag-danger' : d.status === 'pending' ? 'tag-warn' : '') }, d.status),
      ` ${d.kind} · visit ${shortID(d.visit_id)} · to ${shortID(d.subscription_id)}`),
    h('p', { className: 'hint' }, `${when(d.occurred_at)} · ` + (d.attempt_log.length
      ? d.attempt_log.map((a) => `#${a.attempt} ${when(a.at)} ${a.status_code || ''} ${a.error_class || 'ok'}`).join('; ')
      : 'not attempted yet')))));
}

async function loadWebhooks() {
  /** @type {[{webhooks: Webhook[]}, {deliveries: Delivery[]}]} */
  const [subs, log] = await Promise.all([get('/api/v1/admin/webhooks'), get('/api/v1/admin/webhooks/deliveries?limit=50')]);
  renderWebhooks(subs.webhooks || [], log.deliveries || []);
}

/** @param {Grant[]} grants */
function renderGrants(grants) {
  grants.sort((a, b) => Number(!!a.reviewed_at) - Number(!!b.reviewed_at) || b.granted_at.localeCompare(a.granted_at));
  ui.grantsEmpty.hidden = grants.length > 0;
  ui.grants.replaceChildren(...grants.map((g) => {
    const who = label(usersByID.get(g.user_id));
    const item = h('li', { className: 'item' + (g.reviewed_at ? ' done' : ''), dataset: { grantId: g.id } },
      h('p', { className: 'item-title' }, `${who} · visit ${shortID(g.visit_id)}`),
      h('blockquote', { className: 'reason' }, g.reason),
      h('p', { className: 'hint' }, `Granted ${when(g.granted_at)}, until ${when(g.expires_at)}`,
        g.reviewed_at ? ` · reviewed ${when(g.reviewed_at)}` : ''),
      h('p', { className: 'hint mono' }, `Visit ID ${g.visit_id}`));
    if (!g.reviewed_at && g.user_id === selfID) {
      item.append(h('p', { className: 'hint' }, 'This is your own grant: another admin reviews it (or, in a clinic with one admin, the operator on the server).'));
    }
    if (!g.reviewed_at) {
      item.append(reviewAction('Mark reviewed', `${who}, ${when(g.granted_at)}`,
        `/api/v1/admin/break-glass/${encodeURIComponent(g.id)}/review`, 'Grant marked reviewed.', loadGrants, ui.grantsRefresh));
    }
    return item;
  }));
}

async function loadGrants() {
  /** @type {{grants: Grant[]}} */
  const r = await get('/api/v1/admin/break-glass');
  renderGrants(r.grants || []);
}

ui.usersRefresh.addEventListener('click', () => busy(ui.usersRefresh, () => loadUsers().catch(problem)));
ui.alertsRefresh.addEventListener('click', () => busy(ui.alertsRefresh, () => loadAlerts().catch(problem)));
ui.webhooksRefresh.addEventListener('click', () => busy(ui.webhooksRefresh, () => loadWebhooks().catch(problem)));
ui.grantsRefresh.addEventListener('click', () => busy(ui.grantsRefresh, () => loadGrants().catch(problem)));

async function main() {
  const s = await startStaffPage('admin');
  if (!s) return;
  selfID = s.view.user_id || '';
  try {
    await loadUsers(); // first: alerts and grants name users from it
    await Promise.all([loadAlerts(), loadGrants(), loadWebhooks()]);
  } catch (err) {
    problem(err);
  }
  document.body.dataset.loaded = 'true';
}

main();
