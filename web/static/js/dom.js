// Small DOM helpers shared by the staff pages. Everything is built with
// createElement and textContent: no HTML strings, no inline styles (CSP).

/**
 * The element with this ID (the pages' markup guarantees it exists).
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return /** @type {T} */ (e);
}

/**
 * Creates an element. `props` sets properties (className, type, …) except
 * `dataset` (an object) and `aria` (attributes without the aria- prefix).
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'aria') for (const [a, av] of Object.entries(v)) e.setAttribute('aria-' + a, String(av));
    else /** @type {any} */ (e)[k] = v;
  }
  for (const c of children) {
    if (c !== null && c !== undefined && c !== false) e.append(c);
  }
  return e;
}

/**
 * Shows a message in a live region (role=status or role=alert element);
 * an empty text hides it.
 * @param {HTMLElement} region
 * @param {string} text
 */
export function say(region, text) {
  region.textContent = text;
  region.hidden = !text;
}

/** A date and time in the user's locale. @param {string|undefined|null} iso */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** The first 8 characters of an opaque ID, for display. @param {string} id */
export function shortID(id) {
  return String(id || '').slice(0, 8);
}

/**
 * Disables a button while `work` runs, so a double click sends one request.
 * @template T
 * @param {HTMLButtonElement} button
 * @param {() => Promise<T>} work
 * @returns {Promise<T>}
 */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/**
 * Copies text to the clipboard, saying so in `region`. Falls back to
 * selecting the field so the user can copy by hand.
 * @param {string} text
 * @param {HTMLElement} region
 * @param {HTMLInputElement|HTMLTextAreaElement} [field]
 */
export async function copy(text, region, field) {
  try {
    await navigator.clipboard.writeText(text);
    say(region, 'Copied.');
  } catch {
    if (field) {
      field.focus();
      field.select();
    }
    say(region, 'Copying is not available here: the text is selected, copy it with your keyboard.');
  }
}

/**
 * Asks the user to confirm an action in a modal dialog. Resolves true when
 * they confirm; Escape or Cancel resolve false. Focus returns to where it was.
 * @param {object} o
 * @param {string} o.title
 * @param {string} o.message
 * @param {string} o.confirm  label of the confirming button ("Disable")
 * @param {boolean} [o.danger]
 * @returns {Promise<boolean>}
 */
export function confirmAction(o) {
  const before = /** @type {HTMLElement|null} */ (document.activeElement);
  const title = h('h2', { id: 'confirm-title' }, o.title);
  const msg = h('p', { id: 'confirm-message' }, o.message);
  const ok = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', id: 'confirm-ok', className: o.danger ? 'danger' : 'primary' }, o.confirm));
  const cancel = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', id: 'confirm-cancel' }, 'Cancel'));
  const dlg = /** @type {HTMLDialogElement} */ (h('dialog', { className: 'dialog', aria: { labelledby: 'confirm-title', describedby: 'confirm-message' } },
    title, msg, h('div', { className: 'actions' }, cancel, ok)));
  document.body.append(dlg);
  return new Promise((resolve) => {
    let answer = false;
    ok.addEventListener('click', () => { answer = true; dlg.close(); });
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (before && before.isConnected) before.focus();
      resolve(answer);
    });
    dlg.showModal();
    cancel.focus(); // the safe choice has the focus
  });
}
