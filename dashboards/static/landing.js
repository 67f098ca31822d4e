// The landing page: links by audience; if someone is signed in, a way straight to their page.

import { el, homeFor, optionalUser, ROLE_NAMES } from './common.js';

const who = await optionalUser();
if (who) {
  const box = document.getElementById('signed-in');
  box.replaceChildren(`You are signed in as ${who.name} (${ROLE_NAMES[who.role] || who.role}). `, el('a', { href: homeFor(who) }, 'Go to your page'), '.');
  box.hidden = false;
}
