// A home: the risk of damp and mould in plain words, what to do and what the landlord is doing, and the
// temperature and humidity in each room. A tenant sees their own home; an officer or admin opens a home
// with ?home=ID. Whatever the address bar says, the API decides: any other home is "not found".

import { api, ApiError, degrees, DEVICE_STATUS_WORDS, el, failed, LEVELS, percent, requireUser, when, ago } from './common.js';
import { drawCharts, roomName } from './homecharts.js';


function notFound(text) {
  document.getElementById('home-heading').textContent = 'Home not found';
  document.getElementById('address').textContent = text;
  document.getElementById('home').hidden = true;
}

function showLevel(home) {
  const damp = home.damp;
  const level = home.case && home.case.emergency ? 'emergency' : damp.level;
  const words = LEVELS[level] || { label: level, plain: level };
  const badge = document.getElementById('level-badge');
  badge.className = `badge badge--${level}`;
  badge.textContent = `${words.label}: ${words.plain}`;
  document.getElementById('level-panel').dataset.level = level;
  document.getElementById('level-text').textContent = words.explain || '';
  document.getElementById('assessed').textContent = damp.assessed_at ? `Last checked ${when(damp.assessed_at)}.` : '';
  const reasons = document.getElementById('reasons');
  reasons.replaceChildren(...(damp.reasons || []).map((r) => el('li', {}, r)));
  document.getElementById('why').hidden = !(damp.reasons || []).length;
}

function showAdvice(home) {
  const list = document.getElementById('advice');
  const items = (home.advice || []).map((a) => el('li', {}, a));
  if (!items.length) items.push(el('li', {}, 'There is nothing you need to do at the moment.'));
  list.replaceChildren(...items);
}

// The council's phone and email and its report-a-repair page (from the settings, through the API).
function showContact(home) {
  const c = home.contact || {};
  const list = document.getElementById('contact');
  const items = [];
  if (c.phone) items.push(el('li', {}, 'Phone: ', el('a', { href: `tel:${c.phone.replace(/[^0-9+]/g, '')}` }, c.phone)));
  if (c.email) items.push(el('li', {}, 'Email: ', el('a', { href: `mailto:${c.email}` }, c.email)));
  if (!items.length) items.push(el('li', {}, `Please contact ${c.name || 'your landlord'} in the usual way.`));
  list.replaceChildren(...items);
  const repair = document.getElementById('repair');
  repair.replaceChildren(c.repair_url
    ? el('a', { class: 'button', id: 'repair-link', href: c.repair_url, rel: 'noopener' }, 'Report a repair')
    : '');
  repair.hidden = !c.repair_url;
}

// The visit the landlord booked on the case, if any.
function showVisit(home) {
  const visit = home.case && home.case.next_visit;
  document.getElementById('visit-panel').hidden = !visit;
  if (!visit) return;
  document.getElementById('visit-when').textContent = `Your landlord will visit on ${visit.when}.`;
  document.getElementById('visit-note').textContent = visit.note || '';
}

function showSensors(home) {
  const list = document.getElementById('sensors');
  list.replaceChildren(...home.sensors.map((s) => {
    const t = s.latest.temperature;
    const h = s.latest.relative_humidity;
    const now = [t ? degrees(t.value) : null, h ? `${percent(h.value)} humidity` : null].filter(Boolean).join(', ');
    return el('li', {}, el('strong', {}, roomName(s)), `: ${DEVICE_STATUS_WORDS[s.status] || s.status}`,
      s.last_seen ? `, last reading ${ago(s.last_seen)}` : '', now ? ` (${now})` : '');
  }));
  if (!home.sensors.length) list.append(el('li', {}, 'No sensors are fitted yet.'));
}

const who = await requireUser();
if (who) {
  const asked = new URLSearchParams(location.search).get('home');
  const homeId = asked || who.home_id;
  if (!homeId) {
    notFound(who.role === 'tenant'
      ? 'Your account is not linked to a home yet. Please contact your landlord.'
      : 'Choose a home from the Homes page to see its readings.');
  } else {
    try {
      const home = await api(`/api/v1/homes/${encodeURIComponent(homeId)}`);
      document.getElementById('home-heading').textContent = who.role === 'tenant' ? 'Your home' : `Home ${home.id}`;
      document.getElementById('address').textContent = home.address || '';
      document.getElementById('home').hidden = false;
      showLevel(home);
      showVisit(home);
      showAdvice(home);
      showContact(home);
      showSensors(home);
      const range = document.getElementById('range');
      range.addEventListener('change', () => drawCharts(home).catch(failed));
      await drawCharts(home);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
        notFound('We could not find that home, or it is not one you can see.');
      } else {
        failed(err);
      }
    }
  }
}
