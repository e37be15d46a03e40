// The admin's patient lookup on the Recordings and Audit pages: a name and a
// date of birth find patients through the server's blind indexes
// (GET /api/v1/admin/patients; each patient shown is audited), and choosing
// one puts its ID in the page's Patient ID filter. Names never go into the
// address bar: only the chosen ID does, as before.

import { describe, get } from './api.js';
import { busy, byId, h, say, shortID } from './dom.js';

/**
 * @typedef {object} FoundPatient
 * @property {string} id
 * @property {string} name
 * @property {string} date_of_birth
 */

/**
 * Shows the lookup form (#patient-lookup) and wires it to fill `target`.
 * @param {HTMLInputElement} target  the Patient ID filter
 * @param {() => void} [chosen]      called after a patient is chosen
 */
export function patientLookup(target, chosen) {
  const form = /** @type {HTMLFormElement} */ (byId('patient-lookup'));
  const name = /** @type {HTMLInputElement} */ (byId('pl-name'));
  const dob = /** @type {HTMLInputElement} */ (byId('pl-dob'));
  const submit = /** @type {HTMLButtonElement} */ (byId('pl-submit'));
  const status = byId('pl-status');
  const results = byId('pl-results');
  form.hidden = false;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      results.replaceChildren();
      if (!name.value.trim() || !dob.value) {
        say(status, 'Enter the patient’s name and date of birth.');
        return;
      }
      say(status, 'Searching…');
      const q = new URLSearchParams({ name: name.value.trim(), date_of_birth: dob.value });
      try {
        /** @type {{patients: FoundPatient[]}} */
        const res = await get('/api/v1/admin/patients?' + q.toString());
        say(status, res.patients.length ? `${res.patients.length} found: choose one.` : 'No patient has that name and date of birth.');
        for (const p of res.patients) {
          const pick = h('button', { type: 'button', className: 'link' },
            `${p.name}, born ${p.date_of_birth} `, h('span', { className: 'mono' }, `(${shortID(p.id)})`));
          pick.addEventListener('click', () => {
            target.value = p.id;
            results.replaceChildren();
            say(status, `Patient ID filled in for ${p.name}.`);
            target.focus();
            if (chosen) chosen();
          });
          results.append(h('li', {}, pick));
        }
      } catch (err) {
        say(status, describe(err));
      }
    });
  });
}
