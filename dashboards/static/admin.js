// Administration: load the registry, and look at unknown devices and rejected messages.

import { announce, api, ApiError, el, failed, requireUser, when } from './common.js';

function cut(text, n = 160) {
  return text.length > n ? `${text.slice(0, n)}…` : text;
}

async function load() {
  const [quarantine, dead] = await Promise.all([api('/api/v1/quarantine?limit=200'), api('/api/v1/dead-letters?limit=200')]);
  const q = document.getElementById('quarantine');
  q.replaceChildren(...quarantine.map((d) => el('tr', {},
    el('th', { scope: 'row' }, d.device_id), el('td', { class: 'num' }, String(d.messages)), el('td', {}, when(d.last_received)),
    el('td', {}, el('code', {}, d.last_topic)))));
  if (!quarantine.length) q.append(el('tr', {}, el('td', { colspan: '4' }, 'No unknown devices.')));
  const t = document.getElementById('dead-letters');
  t.replaceChildren(...dead.map((m) => el('tr', {},
    el('td', {}, when(m.received_at)), el('td', {}, m.device_id || '–'), el('td', {}, m.reason),
    el('td', {}, el('code', {}, m.topic)), el('td', {}, el('code', {}, cut(m.payload))))));
  if (!dead.length) t.append(el('tr', {}, el('td', { colspan: '5' }, 'No rejected messages.')));
}

function registryForm() {
  const form = document.getElementById('registry-form');
  const errorBox = document.getElementById('registry-error');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const file = form.file.files[0];
    if (!file) {
      errorBox.textContent = 'Choose a registry file to load.';
      errorBox.hidden = false;
      errorBox.focus();
      return;
    }
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const r = await api('/api/v1/registry', { method: 'PUT', body: await file.text(), headers: { 'Content-Type': 'application/geo+json' } });
      announce(`Registry loaded: ${r.features} features, ${r.changed} changed (${r.routes} routes, ${r.devices} devices, ${r.homes} homes).`);
    } catch (err) {
      errorBox.textContent = err instanceof ApiError ? `The registry was not loaded: ${err.message}` : String(err);
      errorBox.hidden = false;
      errorBox.focus();
    } finally {
      button.disabled = false;
    }
  });
}

const who = await requireUser(['admin']);
if (who) {
  registryForm();
  load().catch(failed);
}
