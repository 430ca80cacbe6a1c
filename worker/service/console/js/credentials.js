// The credential of a destination: picked from the worker's credentials, or created on the spot, with
// a "Test credential" button answering the account and its call-limit header.

import { ApiError, Unreachable, get, post } from './api.js';
import { worker } from './worker.js';
import { el, field, fill, select } from './dom.js';
import { banner, clearBanner, facts } from './ui.js';

function listOf(answer) {
  if (Array.isArray(answer)) return answer;
  if (answer && Array.isArray(answer.credentials)) return answer.credentials;
  return [];
}

function testAnswer(result) {
  if (!result) return null;
  const ok = result.ok === true;
  const account = result.account && typeof result.account === 'object' ? result.account : {};
  return el('div', { class: ok ? 'test-answer ok' : 'test-answer failed', role: 'status' },
    el('strong', { text: ok ? 'The credential works.' : 'The credential does not work.' }),
    facts([
      ['Account', account.domain ?? account.name ?? ''],
      ['HTTP status', result.status ?? 'no answer'],
      ['Call limit', result.call_limit ?? ''],
      ['Latency', typeof result.latency_ms === 'number' ? `${Math.round(result.latency_ms)} ms` : ''],
      ['Error', result.error ?? ''],
    ]));
}

/** The credential section; `onchange()` after every change. */
export function credentialPicker({ onchange }) {
  let names = [];
  let routes = true; // false when this worker has no /credentials routes
  let inline = null; // a credential written into the destination itself (kept as it is when editing)
  const INLINE = '(inline)';
  const choice = select([['', 'Choose a credential…']], '', { id: 'credential-select' });
  // a worker without the credentials routes: the name of a credential of its config, typed
  const typed = el('input', { type: 'text', id: 'credential-name', autocomplete: 'off', spellcheck: 'false' });
  const typedField = field('Credential name', typed, {
    path: 'credential', hint: 'one defined under `credentials:` in the worker\'s config',
  });
  const answer = el('div', { class: 'credential-answer' });
  const testSaved = el('button', { type: 'button', class: 'quiet', text: 'Test credential' });
  const newButton = el('button', { type: 'button', class: 'quiet', text: 'New credential…', 'aria-expanded': 'false' });

  const inputs = {
    name: el('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' }),
    domain: el('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'mystore' }),
    username: el('input', { type: 'email', autocomplete: 'off', spellcheck: 'false' }),
    api_key: el('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false' }),
    base_url: el('input', { type: 'url', autocomplete: 'off', spellcheck: 'false', placeholder: 'https://{domain}.gorgias.com' }),
  };
  const createButton = el('button', { type: 'button', class: 'primary', text: 'Create credential' });
  const testNew = el('button', { type: 'button', class: 'quiet', text: 'Test credential' });
  const newAnswer = el('div', { class: 'credential-answer' });
  const newMessage = el('p', { class: 'field-error', role: 'alert', hidden: true });
  const creator = el('fieldset', { class: 'credential-new', hidden: true },
    el('legend', { text: 'New credential' }),
    field('Name', inputs.name, { path: 'credential.name' }),
    field('Helpdesk domain', inputs.domain, { path: 'credential.domain', hint: 'mystore for mystore.gorgias.com' }),
    field('User email', inputs.username, { path: 'credential.username', hint: 'the user the API key belongs to' }),
    field('API key', inputs.api_key, { path: 'credential.api_key', hint: 'stored encrypted by the worker; never shown again' }),
    field('Base URL (optional)', inputs.base_url, { path: 'credential.base_url', hint: 'only for a sandbox or proxy; empty for Gorgias' }),
    newMessage,
    el('div', { class: 'buttons' }, testNew, createButton), newAnswer);

  const unsaved = () => {
    const body = {
      name: inputs.name.value.trim(), domain: inputs.domain.value.trim(), auth: 'basic',
      username: inputs.username.value.trim(), api_key: inputs.api_key.value,
    };
    if (inputs.base_url.value.trim()) body.base_url = inputs.base_url.value.trim();
    return body;
  };

  async function load(selected) {
    routes = worker().routes?.credentials !== false;
    pickField.hidden = !routes;
    typedField.hidden = routes;
    newButton.hidden = !routes;
    testSaved.hidden = !routes;
    if (!routes && typeof selected === 'string' && selected !== INLINE) typed.value = selected;
    try {
      names = routes ? listOf(await get('/credentials')) : [];
    } catch {
      names = [];
    }
    const keep = selected ?? choice.value;
    fill(choice, el('option', { value: '', text: routes ? 'Choose a credential…' : 'No credential routes on this worker' }),
      names.map((c) => el('option', {
        value: c.name,
        text: `${c.name} — ${c.domain ?? ''}${c.state && c.state !== 'ok' ? ` (${c.state})` : ''}`,
      })));
    if (inline) choice.append(el('option', { value: INLINE, text: `written in the destination — ${inline.domain ?? ''}` }));
    if (keep && (keep === INLINE || names.some((c) => c.name === keep))) choice.value = keep;
    else if (keep && typeof keep === 'string') {
      choice.append(el('option', { value: keep, text: `${keep} (not found)` }));
      choice.value = keep;
    }
  }

  async function runTest(path, body, where) {
    fill(where, el('p', { class: 'hint', text: 'Testing…' }));
    try {
      const result = await post(path, body);
      fill(where, testAnswer(result));
      if (result && result.status == null && result.error) banner('gorgias', `Gorgias did not answer: ${result.error}`);
      else clearBanner('gorgias');
    } catch (error) {
      if (error instanceof Unreachable) fill(where);
      else fill(where, el('p', { class: 'field-error', text: error.message }));
    }
  }

  testSaved.addEventListener('click', () => {
    if (!choice.value || choice.value === INLINE) {
      fill(answer, el('p', { class: 'field-error', text: 'Choose a saved credential first.' }));
      return;
    }
    runTest(`/credentials/${encodeURIComponent(choice.value)}/test`, {}, answer);
  });
  testNew.addEventListener('click', () => runTest('/credentials/test', unsaved(), newAnswer));
  createButton.addEventListener('click', async () => {
    if (createButton.disabled) return;
    newMessage.hidden = true;
    // a write to the worker's Kafka store: it can take seconds; one click, one write
    createButton.disabled = true;
    createButton.textContent = 'Creating…';
    try {
      const body = unsaved();
      await post('/credentials', body);
      inputs.api_key.value = '';
      creator.hidden = true;
      newButton.setAttribute('aria-expanded', 'false');
      await load(body.name);
      onchange?.();
      choice.focus();
    } catch (error) {
      newMessage.hidden = false;
      const items = error instanceof ApiError ? error.errors : [];
      newMessage.textContent = items.length
        ? items.map((e) => `${e.path}: ${e.message}${e.suggestion ? ` (${e.suggestion})` : ''}`).join('; ')
        : error.message;
    } finally {
      createButton.disabled = false;
      createButton.textContent = 'Create credential';
    }
  });
  newButton.addEventListener('click', () => {
    creator.hidden = !creator.hidden;
    newButton.setAttribute('aria-expanded', String(!creator.hidden));
    if (!creator.hidden) inputs.name.focus();
  });
  choice.addEventListener('change', () => {
    fill(answer);
    onchange?.();
  });
  typed.addEventListener('input', () => onchange?.());

  const pickField = field('Gorgias credential', choice, { path: 'credential' });
  const node = el('fieldset', { class: 'section', id: 'credential-section' },
    el('legend', { text: 'Credential' }), pickField, typedField,
    el('div', { class: 'buttons' }, testSaved, newButton), answer, creator);
  load();
  return {
    node,
    /** The destination's `credential`: a credential's name, or undefined when none is chosen. */
    value() {
      if (!routes) return inline && !typed.value.trim() ? inline : (typed.value.trim() || undefined);
      if (choice.value === INLINE) return inline;
      return choice.value || undefined;
    },
    set(value) {
      // a named credential comes back resolved (a block with its name): pick it by that name
      if (value && typeof value === 'object' && typeof value.name === 'string') value = value.name;
      inline = value && typeof value === 'object' ? value : null;
      return load(inline ? INLINE : (typeof value === 'string' ? value : ''));
    },
    reload: () => load(),
  };
}
