// What the audit and incident pages share: times between the
// datetime-local inputs and the API's RFC 3339, the staff directory that
// names actors, and client-side paging of long tables.

import { get } from './api.js';
import { h } from './dom.js';

/** @param {number} n */
const pad = (n) => String(n).padStart(2, '0');

/**
 * Converts a datetime-local value ("2025-03-01T14:30", the user's local
 * time) to RFC 3339 with the local offset ("2025-03-01T14:30:00+01:00").
 * An empty or invalid value gives ''.
 * @param {string} local
 * @returns {string}
 */
export function rfc3339(local) {
  if (!local) return '';
  const d = new Date(local); // a date-time without offset is local time
  if (Number.isNaN(d.getTime())) return '';
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
    + `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/**
 * The datetime-local value of a time, to the minute; `roundUp` takes the
 * next whole minute (for the exclusive end of a range, so "now" includes
 * the current minute).
 * @param {Date} d
 * @param {boolean} [roundUp]
 */
export function localValue(d, roundUp) {
  const t = new Date(d.getTime());
  if (roundUp && (t.getSeconds() || t.getMilliseconds())) t.setMinutes(t.getMinutes() + 1);
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}T${pad(t.getHours())}:${pad(t.getMinutes())}`;
}

/**
 * @typedef {object} StaffMember
 * @property {string} id
 * @property {string} email
 * @property {string} name
 * @property {string} role
 */

/**
 * Loads the staff accounts (to name actors by email) and offers them in a
 * datalist, so an actor ID can be picked by name or email.
 * @param {HTMLDataListElement} [list]
 * @returns {Promise<Map<string, StaffMember>>}
 */
export async function loadStaff(list) {
  /** @type {{users: StaffMember[]}} */
  const r = await get('/api/v1/admin/users');
  const staff = new Map((r.users || []).map((u) => [u.id, u]));
  if (list) {
    list.replaceChildren(...[...staff.values()].map((u) => h('option', { value: u.id, label: `${u.name || u.email} (${u.email})` })));
  }
  return staff;
}

/**
 * Builds a query string from the non-empty values.
 * @param {Record<string, string|number|undefined>} params
 */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

/**
 * Shows `rows` a page at a time in `body`, with Previous/Next buttons and a
 * "Showing 1–25 of 505" line in `nav`.
 * @template T
 */
export class Pager {
  /**
   * @param {object} o
   * @param {HTMLElement} o.body   the tbody to fill
   * @param {HTMLElement} o.nav    where the paging controls go
   * @param {(row: T) => HTMLElement} o.render
   * @param {string} o.noun        "patients", for "Showing 1–25 of 505 patients"
   * @param {number} [o.size]
   */
  constructor(o) {
    this.o = o;
    this.size = o.size || 25;
    /** @type {T[]} */ this.rows = [];
    this.page = 0;
    this.info = h('p', { className: 'hint pager-info', aria: { live: 'polite' } });
    this.prev = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: 'pager-prev' }, 'Previous'));
    this.next = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: 'pager-next' }, 'Next'));
    this.prev.addEventListener('click', () => this.show(this.page - 1));
    this.next.addEventListener('click', () => this.show(this.page + 1));
    this.buttons = h('div', { className: 'actions' }, this.prev, this.next);
    o.nav.replaceChildren(this.info, this.buttons);
  }

  /** @param {T[]} rows */
  set(rows) {
    this.rows = rows;
    this.show(0);
  }

  /** @param {number} page */
  show(page) {
    const pages = Math.max(1, Math.ceil(this.rows.length / this.size));
    this.page = Math.min(Math.max(0, page), pages - 1);
    const start = this.page * this.size;
    const slice = this.rows.slice(start, start + this.size);
    this.o.body.replaceChildren(...slice.map(this.o.render));
    this.info.textContent = this.rows.length
      ? `Showing ${start + 1}–${start + slice.length} of ${this.rows.length} ${this.o.noun}.`
      : `No ${this.o.noun}.`;
    const focused = document.activeElement;
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
    // A button that just disabled itself would drop the focus to <body>.
    if (focused === this.next && this.next.disabled) this.prev.focus();
    if (focused === this.prev && this.prev.disabled) this.next.focus();
    this.buttons.hidden = pages < 2;
  }
}
