// Sign in: the OAuth2 password form, the token kept in sessionStorage, then on to the page for the role.

import { api, ApiError, homeFor, keepToken, signOut } from './common.js';

const form = document.getElementById('login-form');
const errorBox = document.getElementById('login-error');
const submit = document.getElementById('login-submit');

function safeNext() {
  const next = new URLSearchParams(location.search).get('next');
  // Only a path on this site: no scheme, no "//host", no backslashes.
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.includes('\\') || next.startsWith('/login')) return null;
  return next;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
  errorBox.focus();
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    showError('Enter your username and your password.');
    (username ? form.password : form.username).focus();
    return;
  }
  submit.disabled = true;
  errorBox.hidden = true;
  try {
    const body = new URLSearchParams({ username, password });
    const tok = await api('/api/v1/auth/token', {
      method: 'POST', body, auth: false, headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    keepToken(tok.access_token);
    const who = await api('/api/v1/auth/me');
    location.assign(safeNext() || homeFor(who));
  } catch (err) {
    signOut();
    showError(err instanceof ApiError && err.status === 401 ? 'The username or password is not right. Check them and try again.' : `Could not sign in: ${err.message}`);
    submit.disabled = false;
  }
});

form.username.focus();
