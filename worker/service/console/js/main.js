// The console: routes (#/ the destinations, #/new, #/edit/NAME), the token dialog and the banners.

import { get, onReachability, setToken, token, whenTokenNeeded } from './api.js';
import { setWorker, worker } from './worker.js';
import { showEditor } from './editor.js';
import { showList } from './list.js';
import { askToken, banner, clearBanner } from './ui.js';

const screen = document.getElementById('screen');
let leave = () => {};

function route() {
  leave();
  const hash = window.location.hash || '#/';
  const edit = hash.match(/^#\/edit\/(.+)$/);
  if (hash === '#/new') leave = showEditor(screen, null);
  else if (edit) leave = showEditor(screen, decodeURIComponent(edit[1]));
  else leave = showList(screen);
  screen.focus({ preventScroll: true });
}

function tokenLabel() {
  document.getElementById('token-button').textContent = token() ? 'Control token ✓' : 'Control token';
}

whenTokenNeeded(async (reason) => {
  const given = await askToken(reason);
  if (given === '') setToken(null);
  tokenLabel();
  return given || null;
});

onReachability((ok) => {
  if (ok && !worker().version) get('/about').then(setWorker, () => {});  // the page opened while it was away
  if (ok) clearBanner('worker');
  else banner('worker', 'the worker does not answer: is it running? The page retries by itself.');
});

document.getElementById('token-button').addEventListener('click', async () => {
  const given = await askToken('');
  if (given !== null) setToken(given || null);
  tokenLabel();
});

/** Ask for the token first when this worker needs one (no 401 to recover from later). */
async function start() {
  try {
    const about = await get('/about');
    setWorker(about);
    document.getElementById('worker-note').textContent = `worker ${about.version} · deployment ${about.deployment}`;
    document.getElementById('token-button').hidden = !about.control_token;
    if (about.control_token && !token()) {
      const given = await askToken('');
      if (given) setToken(given);
    }
  } catch {
    /* the banner says the worker does not answer */
  }
  tokenLabel();
  window.addEventListener('hashchange', route);
  route();
}

start();
