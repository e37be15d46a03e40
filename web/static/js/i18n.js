// The patient pages' languages: the catalogues under /i18n/<code>.json (one
// flat file per language, the same files the server's email uses — see
// internal/i18n) and the language switch the page renders from them
// (#lang-select, one option per file: the list is the files).
//
// Markup names its text by key: data-i18n="key" sets the element's text,
// data-i18n-attr="aria-label:key;title:key" sets attributes. Scripts call
// t('key', {vars}) for a string, or tr(el, 'key', {vars}) to set an element's
// text and remember its key, so switching the language re-translates every
// text already on the page. A key missing in a language falls back to
// English, then to the key itself.
//
// The language in use is, in order: the one the patient picked on the page,
// the one the provider chose for the invite, English. It is kept in
// sessionStorage (this tab, this visit), so the call page the waiting room
// opens speaks it too. <html lang> follows it.

const STORE = 'openvisit.lang';
const DEFAULT = 'en';

/** @type {Record<string, string>} */
let msgs = {};
/** @type {Record<string, string>} */
let fallback = {};
let current = DEFAULT;
/** @type {Array<(lang: string) => void>} */
const listeners = [];

/** The page's language switch, when it has one. */
const select = () => /** @type {HTMLSelectElement|null} */ (document.getElementById('lang-select'));

/** The languages offered: the switch's options (one per catalogue file). @returns {string[]} */
export function languages() {
  const s = select();
  return s ? [...s.options].map((o) => o.value) : [DEFAULT];
}

/** The language in use. */
export function lang() {
  return current;
}

/** @param {string} code @returns {Promise<Record<string, string>>} */
async function fetchCatalogue(code) {
  const resp = await fetch(`/i18n/${encodeURIComponent(code)}.json`, { credentials: 'same-origin' });
  if (!resp.ok) throw new Error(`catalogue ${code}: HTTP ${resp.status}`);
  return resp.json();
}

/**
 * The text of key in the language in use, {placeholders} filled from vars.
 * @param {string} key @param {Record<string, string|number>} [vars]
 */
export function t(key, vars) {
  let s = msgs[key] ?? fallback[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

/**
 * Sets el's text to key's (and remembers key and vars, so a language switch
 * re-translates it). An empty key clears the text.
 * @template {HTMLElement} E
 * @param {E} el @param {string} key @param {Record<string, string|number>} [vars]
 * @returns {E}
 */
export function tr(el, key, vars) {
  if (!key) {
    delete el.dataset.i18n;
    delete el.dataset.i18nVars;
    el.textContent = '';
    return el;
  }
  el.dataset.i18n = key;
  if (vars) el.dataset.i18nVars = JSON.stringify(vars);
  else delete el.dataset.i18nVars;
  el.textContent = t(key, vars);
  return el;
}

/**
 * Sets el's text from a catalogue key when s is one, else to s as it is
 * (a text already translated, or one only staff read).
 * @param {HTMLElement} el @param {string} s @param {Record<string, string|number>} [vars]
 */
export function put(el, s, vars) {
  if (s && (s in fallback || s in msgs)) {
    tr(el, s, vars);
    return;
  }
  tr(el, '');
  el.textContent = s;
}

/**
 * A live region's message by key (see dom.js say): an empty key hides it.
 * @param {HTMLElement} region @param {string} key @param {Record<string, string|number>} [vars]
 */
export function sayT(region, key, vars) {
  tr(region, key, vars);
  region.hidden = !key;
}

/** Translates every marked element under root. @param {ParentNode} [root] */
export function apply(root = document) {
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll('[data-i18n]'))) {
    let vars;
    try {
      vars = el.dataset.i18nVars ? JSON.parse(el.dataset.i18nVars) : undefined;
    } catch {
      vars = undefined;
    }
    el.textContent = t(el.dataset.i18n || '', vars);
  }
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll('[data-i18n-attr]'))) {
    for (const pair of (el.dataset.i18nAttr || '').split(';')) {
      const [attr, key] = pair.split(':').map((x) => x.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

/**
 * Switches the page to a language (one of languages(); anything else is
 * English) and re-translates it.
 * @param {string} code @param {{remember?: boolean}} [o] remember: keep it for this tab
 */
export async function setLanguage(code, o = {}) {
  const want = languages().includes(code) ? code : DEFAULT;
  try {
    if (!Object.keys(fallback).length) fallback = await fetchCatalogue(DEFAULT);
    msgs = want === DEFAULT ? fallback : await fetchCatalogue(want);
    current = want;
  } catch {
    msgs = fallback;
    current = Object.keys(fallback).length ? DEFAULT : current;
  }
  document.documentElement.lang = current;
  const s = select();
  if (s) s.value = current;
  if (o.remember) {
    try {
      sessionStorage.setItem(STORE, current);
    } catch {
      // storage refused: the language lasts as long as the page
    }
  }
  apply();
  for (const fn of listeners) fn(current);
}

/** Calls fn after every language switch (for text built from dates). @param {(lang: string) => void} fn */
export function onLanguage(fn) {
  listeners.push(fn);
}

/** The language this tab kept for the visit, or ''. */
export function remembered() {
  try {
    return sessionStorage.getItem(STORE) || '';
  } catch {
    return '';
  }
}

/** Forgets the tab's language (a new invite link was opened). */
export function forget() {
  try {
    sessionStorage.removeItem(STORE);
  } catch {
    // nothing kept
  }
}

/**
 * Starts the page's languages: the remembered language, else preferred
 * (the invite's), else English; and wires the switch.
 * @param {string} [preferred]
 */
export async function startI18n(preferred) {
  const s = select();
  if (s) s.addEventListener('change', () => setLanguage(s.value, { remember: true }));
  await setLanguage(remembered() || preferred || DEFAULT);
}

/**
 * A date and time in the language in use and the browser's time zone.
 * @param {string|undefined|null} iso @param {Intl.DateTimeFormatOptions} opts
 */
export function formatDate(iso, opts) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(current, opts).format(d);
}
