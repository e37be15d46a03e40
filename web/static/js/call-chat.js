// The call page's chat panel: text messages to everyone in the visit.
// Messages arrive as `chat` events on the visit's event stream
// (visit-events.js), each with its sequence number; the panel shows them in
// that order, once each, in a log that screen readers announce politely.
// Sending is one POST; the sender's own message comes back on the stream
// like everyone else's, so every page shows the same order.

import { APIError, post } from './api.js';
import { t } from './i18n.js';

/**
 * Every patient-facing string of the chat, in one place (the message
 * catalogue takes them from here).
 */
export const CHAT_STRINGS = {
  get title() { return t('chat.title'); },
  get label() { return t('chat.label'); },
  get send() { return t('chat.send'); },
  get empty() { return t('chat.empty'); },
  get you() { return t('chat.you'); },
  get provider() { return t('call.role.provider'); },
  get patient() { return t('call.role.patient'); },
  tooLong: (/** @type {number} */ max) => t('chat.too_long', { max }),
  left: (/** @type {number} */ n) => t('chat.left', { n }),
  get failed() { return t('chat.failed'); },
};

/** The longest message (the server's chat.MaxRunes). */
export const MAX_CHARS = 2000;

/**
 * @typedef {object} ChatMessage
 * @property {string} id
 * @property {number} seq
 * @property {string} role  'provider' | 'patient'
 * @property {string} at    RFC 3339
 * @property {string} text
 * @property {boolean} mine
 */

/** The chat panel of call.html (#chat). Lifecycle: new → add()… ; the page lives as long as the visit. */
export class ChatPanel {
  /** @param {{visit: () => string|null, root: HTMLElement}} opts */
  constructor(opts) {
    this.opts = opts;
    const q = (/** @type {string} */ s) => /** @type {HTMLElement} */ (opts.root.querySelector(s));
    this.log = q('#chat-log');
    this.emptyText = q('#chat-empty');
    this.form = /** @type {HTMLFormElement} */ (q('#chat-form'));
    this.input = /** @type {HTMLTextAreaElement} */ (q('#chat-input'));
    this.count = q('#chat-count');
    this.error = q('#chat-error');
    /** @type {number} the last sequence number shown */ this.last = 0;
    this.input.maxLength = MAX_CHARS;
    this.form.addEventListener('submit', (ev) => { ev.preventDefault(); this.send(); });
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); this.send(); }
    });
    this.input.addEventListener('input', () => this.showCount());
  }

  /** Shows the panel. */
  show() {
    this.opts.root.hidden = false;
  }

  /** Adds a message from the stream; one already shown (a resent event) is skipped. @param {ChatMessage} m */
  add(m) {
    if (!m || typeof m.seq !== 'number' || m.seq <= this.last) return;
    this.last = m.seq;
    this.emptyText.hidden = true;
    const who = m.mine ? CHAT_STRINGS.you : (m.role === 'provider' ? CHAT_STRINGS.provider : CHAT_STRINGS.patient);
    const at = new Date(m.at);
    const time = document.createElement('time');
    time.dateTime = m.at;
    time.textContent = at.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
    const li = document.createElement('li');
    li.dataset.seq = String(m.seq);
    li.className = m.mine ? 'chat-msg mine' : 'chat-msg';
    const head = document.createElement('p');
    head.className = 'chat-head';
    head.append(who + ' ', time);
    const body = document.createElement('p');
    body.className = 'chat-text';
    body.textContent = m.text;
    li.append(head, body);
    this.log.append(li);
    li.scrollIntoView({ block: 'nearest' });
  }

  /** @private */
  showCount() {
    const left = MAX_CHARS - [...this.input.value].length;
    this.count.textContent = left < 200 ? CHAT_STRINGS.left(left) : '';
  }

  /** @private */
  async send() {
    const text = this.input.value.trim();
    const visit = this.opts.visit();
    if (!text || !visit) return;
    if ([...text].length > MAX_CHARS) {
      this.fail(CHAT_STRINGS.tooLong(MAX_CHARS));
      return;
    }
    this.fail('');
    try {
      await post(`/api/v1/visits/${encodeURIComponent(visit)}/chat`, { text }, { redirect401: false });
      this.input.value = '';
      this.showCount();
    } catch (err) {
      this.fail(err instanceof APIError && err.message ? err.message : CHAT_STRINGS.failed);
    }
  }

  /** @private @param {string} text */
  fail(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }
}
