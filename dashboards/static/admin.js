// Administration: who looks after the damp cases (patches in red when nobody does or nobody hears), the devices
// with status, last seen, battery and problems (filtered), unknown devices and adding them to the registry, user
// accounts (add, disable, reset a password, assign a home or patch), the registry file, rejected messages.

import { ago, announce, api, ApiError, DEVICE_STATUS_LABELS, el, failed, requireUser, ROLE_NAMES, when } from './common.js';

const KINDS = { road_station: 'Road weather station', home_sensor: 'Home sensor' };

function cut(text, n = 160) {
  return text && text.length > n ? `${text.slice(0, n)}…` : text || '';
}

// A table cell that names its column (shown before the value when the table is stacked on a phone).
function td(label, props, ...children) {
  return el('td', { ...props, 'data-label': label }, ...children);
}

function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}

// -- patches ---------------------------------------------------------------------------------------------

async function loadPatches() {
  const patches = await api('/api/v1/damp/patches');
  const body = document.getElementById('patches');
  body.replaceChildren(...patches.map((p) => el('tr', { class: p.problems.length ? 'is-problem' : null, dataset: { patch: p.patch } },
    el('th', { scope: 'row' }, p.patch),
    td('Homes', { class: 'num' }, String(p.homes)),
    td('Open cases', { class: 'num' }, String(p.open_cases), p.unowned_cases ? el('span', { class: 'small overdue' }, `${p.unowned_cases} with nobody able to act`) : null),
    td('Officers', { class: p.officers.length ? null : 'overdue' }, p.officers.length
      ? p.officers.map((o) => `${o.name} (${o.open_cases})${o.email ? '' : ', no email'}`).join('; ') : 'None'),
    td('Notified of new cases', { class: p.recipients.length ? null : 'overdue' }, p.recipients.length ? p.recipients.join(', ') : 'Nobody'),
    td('Problems', { class: p.problems.length ? 'overdue-text' : null }, p.problems.length ? el('ul', { class: 'plain-list' }, p.problems.map((x) => el('li', {}, x))) : 'None'))));
  if (!patches.length) body.append(el('tr', {}, el('td', { colspan: '6' }, 'No patches: load a registry with homes.')));
}

// -- devices ---------------------------------------------------------------------------------------------

function battery(b) {
  if (!b) return '–';
  return b.unit === '%' ? `${Math.round(b.value)} %` : `${b.value.toFixed(2)} V`;
}

let deviceQuery = 0; // answers to older filters that arrive late are dropped

async function loadDevices() {
  const asked = ++deviceQuery;
  const form = document.getElementById('device-filters');
  const params = new URLSearchParams();
  for (const name of ['status', 'kind', 'problems', 'q']) {
    const v = form.elements[name].value.trim();
    if (v) params.set(name, v);
  }
  const r = await api(`/api/v1/admin/devices?${params}`);
  if (asked !== deviceQuery) return;
  const c = r.counts;
  document.getElementById('devices').dataset.query = params.toString();
  document.getElementById('device-counts').textContent = `${c.online + c.stale + c.offline} devices: ${c.online} online, ${c.stale} stale, ${c.offline} offline.`;
  const body = document.getElementById('devices');
  body.replaceChildren(...r.devices.map((d) => el('tr', { class: d.status === 'online' && !d.problems.length ? null : 'is-problem', dataset: { device: d.id, status: d.status } },
    el('th', { scope: 'row' }, d.name || d.id, d.name ? el('span', { class: 'small' }, d.id) : null),
    td('Kind', {}, KINDS[d.kind] || d.kind, d.home_id ? el('span', { class: 'small' }, `${d.home_id}${d.room ? `, ${d.room}` : ''}`) : null),
    td('Status', { class: d.status === 'online' ? null : 'overdue' }, DEVICE_STATUS_LABELS[d.status] || d.status),
    td('Last seen', {}, d.last_seen ? [when(d.last_seen), el('span', { class: 'small' }, ago(d.last_seen))] : 'Never'),
    td('Battery', {}, battery(d.battery)),
    td('Problems', {}, d.problems.length ? el('ul', { class: 'plain-list' }, d.problems.map((p) => el('li', {}, p.message))) : 'None'))));
  if (!r.devices.length) body.append(el('tr', {}, el('td', { colspan: '6' }, 'No device matches.')));
  if (r.truncated) body.append(el('tr', {}, el('td', { colspan: '6' }, 'More devices match: narrow the filters.')));
}

// -- unknown devices ---------------------------------------------------------------------------------------

function field(id, label, input) {
  return el('div', { class: 'field' }, el('label', { for: id }, label), input);
}

function addDeviceForm(d) {
  const box = document.getElementById('add-device');
  const error = el('p', { class: 'error-text', role: 'alert', hidden: true });
  const kind = el('select', { id: 'add-kind', name: 'kind' },
    Object.entries(KINDS).map(([value, label]) => el('option', { value, selected: value === d.suggested_kind }, label)));
  const home = el('div', {}, field('add-home', 'Home id (the home it is in)', el('input', { type: 'text', id: 'add-home', name: 'home', maxlength: '200' })),
    field('add-room', 'Room', el('input', { type: 'text', id: 'add-room', name: 'room', maxlength: '100' })));
  const place = el('div', {}, field('add-lon', 'Longitude (for example −1.8904)', el('input', { type: 'text', id: 'add-lon', name: 'lon', inputmode: 'decimal' })),
    field('add-lat', 'Latitude (for example 52.4862)', el('input', { type: 'text', id: 'add-lat', name: 'lat', inputmode: 'decimal' })));
  const form = el('form', { class: 'form form--grid', 'aria-labelledby': 'add-device-heading' },
    field('add-id', 'Device id', el('input', { type: 'text', id: 'add-id', name: 'id', value: d.device_id, readonly: true })),
    field('add-kind', 'Kind', kind),
    field('add-name', 'Name (what people read)', el('input', { type: 'text', id: 'add-name', name: 'name', maxlength: '200' })),
    home, place,
    field('add-interval', 'Reports every (seconds, optional)', el('input', { type: 'text', id: 'add-interval', name: 'interval', inputmode: 'numeric' })),
    error,
    el('div', {}, el('button', { type: 'submit', class: 'button' }, 'Add to the registry'), ' ',
      el('button', { type: 'button', class: 'button button--secondary', onclick: () => { box.hidden = true; } }, 'Cancel')));
  const sync = () => {
    home.hidden = kind.value !== 'home_sensor';
  };
  kind.addEventListener('change', sync);
  sync();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const num = (v) => (v.trim() === '' ? null : Number(v.trim().replace('−', '-')));
    const body = { id: d.device_id, kind: kind.value, name: form.name.value.trim() || null, lon: num(form.lon.value), lat: num(form.lat.value),
      expected_interval_s: num(form.interval.value) };
    if (kind.value === 'home_sensor') Object.assign(body, { home: form.home.value.trim() || null, room: form.room.value.trim() || null });
    try {
      await api('/api/v1/admin/registry/devices', { method: 'POST', body });
      box.hidden = true;
      await Promise.all([loadUnknown(), loadDevices()]);
      announce(`${d.device_id} added to the registry as a ${KINDS[kind.value].toLowerCase()}: its next messages are accepted.`);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  });
  box.replaceChildren(el('h3', { id: 'add-device-heading' }, `Add ${d.device_id} to the registry`),
    d.last_payload ? el('p', { class: 'hint' }, 'Its last message: ', el('code', {}, cut(d.last_payload, 300))) : null, form);
  box.hidden = false;
  form.name.focus();
}

async function loadUnknown() {
  const unknown = await api('/api/v1/admin/unknown-devices?limit=200');
  const q = document.getElementById('quarantine');
  q.replaceChildren(...unknown.map((d) => el('tr', { dataset: { device: d.device_id } },
    el('th', { scope: 'row' }, d.device_id), td('Messages', { class: 'num' }, String(d.messages)), td('Last received', {}, when(d.last_received)),
    td('Last topic', {}, el('code', {}, d.last_topic)),
    td('Add', {}, el('button', { type: 'button', class: 'button button--secondary', onclick: () => addDeviceForm(d) }, 'Add to registry')))));
  if (!unknown.length) q.append(el('tr', {}, el('td', { colspan: '5' }, 'No unknown devices.')));
}

// -- users ------------------------------------------------------------------------------------------------

function scopeText(u) {
  if (u.role === 'tenant') return u.home_id ? `Home ${u.home_id}` : 'No home';
  if (u.role === 'officer') return u.patch ? `Patch ${u.patch}${u.open_cases ? ` (${u.open_cases} open cases)` : ''}` : 'No patch';
  return '–';
}

async function patchUser(name, body, done) {
  await api(`/api/v1/admin/users/${encodeURIComponent(name)}`, { method: 'PATCH', body });
  await Promise.all([loadUsers(), loadPatches()]);
  announce(done);
}

function editUser(u) {
  const box = document.getElementById('user-edit');
  const error = el('p', { class: 'error-text', role: 'alert', hidden: true });
  const forms = [];
  if (u.role === 'tenant' || u.role === 'officer') {
    const key = u.role === 'tenant' ? 'home_id' : 'patch';
    const scope = el('form', { class: 'form form--inline', 'aria-label': `Assign ${u.name}` },
      field('edit-scope', u.role === 'tenant' ? 'Home id' : 'Patch', el('input', { type: 'text', id: 'edit-scope', name: 'scope', value: u[key] || '', required: true, maxlength: '200' })),
      el('button', { type: 'submit', class: 'button' }, u.role === 'tenant' ? 'Assign the home' : 'Assign the patch'));
    scope.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        await patchUser(u.name, { [key]: scope.scope.value.trim() }, `${u.name} now has ${u.role === 'tenant' ? 'home' : 'patch'} ${scope.scope.value.trim()}.`);
        box.hidden = true;
      } catch (err) {
        error.textContent = errorText(err);
        error.hidden = false;
      }
    });
    forms.push(scope);
  }
  const email = el('form', { class: 'form form--inline', 'aria-label': `Email of ${u.name}` },
    field('edit-email', 'Email (empty: none)', el('input', { id: 'edit-email', name: 'email', type: 'email', value: u.email || '', maxlength: '200' })),
    el('button', { type: 'submit', class: 'button button--secondary' }, 'Save the email'));
  email.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      await patchUser(u.name, { email: email.email.value.trim() || null }, `${u.name}'s email saved.`);
      box.hidden = true;
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  });
  const password = el('form', { class: 'form form--inline', 'aria-label': `New password for ${u.name}` },
    field('edit-password', 'New password (at least 8 characters)', el('input', { id: 'edit-password', name: 'password', type: 'password', minlength: '8', required: true, autocomplete: 'new-password' })),
    el('button', { type: 'submit', class: 'button button--secondary' }, 'Reset the password'));
  password.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      await api(`/api/v1/admin/users/${encodeURIComponent(u.name)}/password`, { method: 'PUT', body: { password: password.password.value } });
      box.hidden = true;
      announce(`${u.name}'s password was reset: tell them the new one by a safe route.`);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  });
  box.replaceChildren(el('h3', {}, `Change ${u.name} (${ROLE_NAMES[u.role] || u.role})`), ...forms, email, password, error,
    el('button', { type: 'button', class: 'button button--secondary', onclick: () => { box.hidden = true; } }, 'Close'));
  box.hidden = false;
  box.querySelector('input').focus();
}

async function loadUsers() {
  const users = await api('/api/v1/admin/users');
  const body = document.getElementById('users');
  body.replaceChildren(...users.map((u) => el('tr', { class: u.disabled ? 'is-disabled' : null, dataset: { user: u.name } },
    el('th', { scope: 'row' }, u.name),
    td('Role', {}, ROLE_NAMES[u.role] || u.role),
    td('Home or patch', { class: (u.role === 'officer' && !u.patch) || (u.role === 'tenant' && !u.home_id) ? 'overdue' : null }, scopeText(u)),
    td('Email', {}, u.email || 'None'),
    td('Account', {}, u.disabled ? 'Disabled' : 'Enabled'),
    td('Change', {},
      el('button', { type: 'button', class: 'button button--secondary', onclick: () => editUser(u) }, 'Change'), ' ',
      el('button', {
        type: 'button',
        class: u.disabled ? 'button button--secondary' : 'button button--warning',
        onclick: () => patchUser(u.name, { disabled: !u.disabled }, `${u.name} ${u.disabled ? 'enabled' : 'disabled'}.`).catch(failed),
      }, u.disabled ? 'Enable' : 'Disable')))));
}

function addUserForm() {
  const form = document.getElementById('add-user');
  const error = document.getElementById('add-user-error');
  const sync = () => {
    document.getElementById('new-patch-field').hidden = form.role.value !== 'officer';
    document.getElementById('new-home-field').hidden = form.role.value !== 'tenant';
  };
  form.role.addEventListener('change', sync);
  sync();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const body = { name: form.name.value.trim(), role: form.role.value, password: form.password.value, email: form.email.value.trim() || null };
    if (body.role === 'officer') body.patch = form.patch.value.trim() || null;
    if (body.role === 'tenant') body.home_id = form.home_id.value.trim() || null;
    try {
      const u = await api('/api/v1/admin/users', { method: 'POST', body });
      form.reset();
      sync();
      await Promise.all([loadUsers(), loadPatches()]);
      announce(`User ${u.name} added (${ROLE_NAMES[u.role] || u.role}).`);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  });
}

// -- registry and rejected messages -----------------------------------------------------------------------

async function loadDead() {
  const dead = await api('/api/v1/dead-letters?limit=200');
  const t = document.getElementById('dead-letters');
  t.replaceChildren(...dead.map((m) => el('tr', {},
    td('Received', {}, when(m.received_at)), td('Device', {}, m.device_id || '–'), td('Reason', {}, m.reason),
    td('Topic', {}, el('code', {}, m.topic)), td('Payload', {}, el('code', {}, cut(m.payload))))));
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
      await Promise.all([loadDevices(), loadUnknown(), loadPatches()]);
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
  addUserForm();
  const filters = document.getElementById('device-filters');
  filters.addEventListener('change', () => loadDevices().catch(failed));
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    loadDevices().catch(failed);
  });
  Promise.all([loadPatches(), loadDevices(), loadUnknown(), loadUsers(), loadDead()]).catch(failed);
}
