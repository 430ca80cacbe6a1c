// New / edit a destination: source topics, credential, endpoint (template or manual), batching,
// response webhook, start position; the sample payload panel on the right; Done saves it paused,
// Activate starts it.

import { ApiError, call, get, post } from './api.js';
import { chips } from './chips.js';
import { checkbox, el, field, fill, select } from './dom.js';
import { credentialPicker } from './credentials.js';
import { endpointSection } from './endpoint.js';
import { samplePanel } from './samples.js';
import { banner, clearBanner } from './ui.js';
import { worker } from './worker.js';

const PLACEHOLDER_NAME = 'new-destination';

function numberInput(value, min) {
  const input = el('input', { type: 'number', min, step: 1, inputmode: 'numeric' });
  input.value = value ?? '';
  return input;
}

/** The source topics: a checkbox per topic on the broker. */
function topicPicker(onchange) {
  let chosen = [];
  const list = el('div', { class: 'topic-list' });
  const note = el('p', { class: 'hint' });
  const error = el('p', { class: 'field-error', hidden: true });
  const node = el('fieldset', { class: 'field topics', dataset: { path: 'source_topics' } },
    el('legend', { text: 'Source topics' }), list, note, error);
  function render(names) {
    const all = [...new Set([...names, ...chosen])].sort();
    fill(list, all.map((name) => {
      const { box, node: row } = checkbox(name, chosen.includes(name));
      box.value = name;
      box.addEventListener('change', () => {
        chosen = box.checked ? [...chosen, name] : chosen.filter((n) => n !== name);
        onchange();
      });
      return row;
    }));
    note.textContent = all.length ? 'Records are read from these topics.' : 'The broker has no topic yet: publish records first.';
  }
  const ready = get('/topics').then((answer) => render((answer.topics || []).map((t) => t.name)))
    .catch((e) => {
      note.textContent = `Topics could not be listed: ${e.message}`;
      if (e instanceof ApiError && e.status === 503) banner('kafka', e.message);
    });
  return {
    node,
    get values() { return [...chosen]; },
    async set(names) { chosen = [...(names || [])]; await ready; render([...list.querySelectorAll('input')].map((b) => b.value)); },
  };
}

/** Show the editor in `screen` for a new destination (`name` null) or an existing one. */
export function showEditor(screen, name) {
  let version = null;
  let saved = name;
  const changed = () => panel.schedule();

  const nameInput = el('input', { type: 'text', id: 'destination-name', autocomplete: 'off', spellcheck: 'false', required: true });
  if (name) { nameInput.value = name; nameInput.readOnly = true; }
  const topics = topicPicker(() => { changed(); panel.follow(() => topics.values[0]); });
  const credential = credentialPicker({ onchange: changed });
  const endpoint = endpointSection({ onchange: changed });

  const batching = checkbox('Batch records together', false, { path: 'batching.enabled' });
  const batchSize = numberInput(100, 1);
  // the grouping algorithms and each one's own settings, as the worker lists them (GET /about)
  const algorithms = worker().algorithms || [];
  const algorithmSettings = Object.fromEntries(algorithms.map((a) => [a.name, a.settings]));
  const algorithm = select(algorithms.map((a) => [a.name, a.summary]), 'arrival_order', { id: 'batching-algorithm' });
  const groupBy = chips({ label: 'Grouping attributes', path: 'batching.attributes', onchange: changed,
    hint: 'records with the same values go in one call' });
  const settings = {
    max_wait_ms: numberInput(2000, 0), window_ms: numberInput(10000, 1),
    gap_ms: numberInput(5000, 1), max_session_ms: numberInput('', 1),
  };
  const settingFields = {
    attributes: groupBy.node,
    max_wait_ms: field('Wait at most (ms)', settings.max_wait_ms, { path: 'batching.max_wait_ms', hint: 'after a batch\'s first record' }),
    window_ms: field('Window (ms)', settings.window_ms, { path: 'batching.window_ms' }),
    gap_ms: field('Gap (ms)', settings.gap_ms, { path: 'batching.gap_ms', hint: 'a session ends after this long without a record of its key' }),
    max_session_ms: field('Longest session (ms, optional)', settings.max_session_ms, { path: 'batching.max_session_ms' }),
  };
  const batchOptions = el('div', { class: 'batch-options' },
    el('div', { class: 'row' }, field('Batch size', batchSize, { path: 'batching.batch_size', hint: 'most records in one call' }),
      field('Grouping algorithm', algorithm, { path: 'batching.algorithm' })),
    Object.values(settingFields));
  const webhook = checkbox('Publish every API response to a response topic (webhook source)', true, { path: 'response_webhook.enabled' });
  const webhookTopic = el('input', { type: 'text', id: 'webhook-topic', spellcheck: 'false', value: 'gorgias.responses' });
  const deadTopic = el('input', { type: 'text', id: 'dead-letter-topic', spellcheck: 'false', value: 'gorgias.dead-letter' });
  const start = select([['earliest', 'earliest: every record still in the topic'], ['latest', 'latest: records published from now on'],
    ['timestamp', 'from a time…']], 'earliest', { id: 'start-position' });
  const startAt = el('input', { type: 'text', id: 'start-time', spellcheck: 'false', placeholder: '2026-01-31T08:00:00Z', hidden: true });

  function showBatching() {
    batchOptions.hidden = !batching.box.checked;
    const wanted = algorithmSettings[algorithm.value] || [];
    for (const [key, node] of Object.entries(settingFields)) node.hidden = !wanted.includes(key);
    startAt.hidden = start.value !== 'timestamp';
  }
  batching.box.addEventListener('change', () => {
    // a template that groups by a key: start with it (its own key, or its usual one when the samples have it)
    const b = endpoint.template()?.batching || {};
    const usual = b.group_example && panel.attributes().includes(b.group_example) ? [b.group_example] : null;
    const key = b.key && b.key.length ? b.key : usual;
    if (batching.box.checked && key && !groupBy.values.length) {
      groupBy.set(key);
      if (algorithm.value === 'arrival_order') algorithm.value = 'by_attribute';
    }
    showBatching();
    changed();
  });
  for (const node of [algorithm, start, webhook.box]) node.addEventListener('change', () => { showBatching(); changed(); });
  for (const node of [nameInput, batchSize, webhookTopic, deadTopic, startAt, ...Object.values(settings)]) {
    node.addEventListener('input', changed);
  }

  function document_(forSave) {
    const e = endpoint.value();
    if (e === null) return null;
    const doc = {
      name: nameInput.value.trim() || (forSave ? '' : PLACEHOLDER_NAME),
      source_topics: topics.values.length || forSave ? topics.values : ['sample'],
      endpoint: e,
      batching: { enabled: batching.box.checked },
      response_webhook: { enabled: webhook.box.checked, topic: webhookTopic.value.trim() },
      dead_letter_topic: deadTopic.value.trim(),
      start_from: start.value === 'timestamp' ? startAt.value.trim() : start.value,
    };
    const cred = credential.value();
    if (cred !== undefined) doc.credential = cred;
    if (batching.box.checked) {
      const b = doc.batching;
      b.batch_size = Number(batchSize.value || 0);
      b.algorithm = algorithm.value;
      for (const key of algorithmSettings[algorithm.value] || []) {
        if (key === 'attributes') {
          if (groupBy.values.length) b.attributes = groupBy.values;
        } else if (settings[key].value !== '') b[key] = Number(settings[key].value);
      }
    }
    return doc;
  }

  const general = el('p', { class: 'field-error general', role: 'alert', hidden: true });
  const form = el('form', { class: 'editor-form', novalidate: true, 'aria-labelledby': 'editor-title' },
    general,
    el('fieldset', { class: 'section' }, el('legend', { text: 'Destination' }),
      field('Name', nameInput, { path: 'name', hint: name ? 'renaming makes a new consumer group: create a new destination instead' : 'letters, digits, dots, dashes' }),
      topics.node,
      field('Start position', start, { path: 'start_from', hint: 'where a destination with no committed offset starts' }), startAt),
    credential.node,
    endpoint.node,
    el('fieldset', { class: 'section' }, el('legend', { text: 'Record batching' }), batching.node, batchOptions),
    el('fieldset', { class: 'section' }, el('legend', { text: 'Response webhook' }), webhook.node,
      field('Response topic', webhookTopic, { path: 'response_webhook.topic' }),
      field('Dead-letter topic', deadTopic, { path: 'dead_letter_topic', hint: 'records that cannot be delivered, with the reason' })));
  form.addEventListener('submit', (event) => event.preventDefault());

  function showErrors(items) {
    for (const node of form.querySelectorAll('.field-error:not(.general)')) { node.hidden = true; node.textContent = ''; }
    for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
    const left = [];
    for (const item of items) {
      const text = item.suggestion && !item.message.includes(item.suggestion)
        ? `${item.message} — ${item.suggestion}` : item.message;
      let path = String(item.path || '').replace(/^destinations\[\d+\]\.?/, '');
      let target = null;
      while (path && !target) {
        target = [...form.querySelectorAll(`[data-path="${CSS.escape(path)}"]`)].find((n) => !n.closest('[hidden]'));
        if (!target) path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
      }
      const slot = target && target.querySelector('.field-error');
      if (!slot) { left.push(`${item.path}: ${text}`); continue; }
      slot.hidden = false;
      slot.textContent = slot.textContent ? `${slot.textContent}; ${text}` : text;
      target.querySelector('input, select, textarea')?.setAttribute('aria-invalid', 'true');
    }
    general.hidden = left.length === 0;
    fill(general, left.length ? el('ul', {}, left.map((t) => el('li', { text: t }))) : null);
  }

  const panel = samplePanel({
    destination: () => document_(false),
    onErrors: showErrors,
    onAttributes: (names) => { endpoint.suggestAttributes(names); groupBy.suggest(names); },
    exampleRecord: () => endpoint.template()?.example?.record ?? null,
  });

  const done = el('button', { type: 'button', class: 'primary', id: 'done', text: 'Done' });
  const activate = el('button', { type: 'button', class: 'primary', id: 'activate', text: 'Activate', hidden: true });
  const outcome = el('p', { class: 'message', role: 'status', id: 'save-outcome' });
  done.addEventListener('click', async () => {
    const doc = document_(true);
    if (!doc) { outcome.textContent = 'Fix the template options (not valid JSON) first.'; return; }
    outcome.textContent = 'Saving…';
    try {
      if (saved) {
        const headers = version !== null ? { 'If-Match': `"${version}"` } : {};
        const answer = await call('PUT', `/destinations/${encodeURIComponent(saved)}`, doc, { headers });
        version = answer.data?.version ?? version;
      } else {
        const answer = await post('/destinations', doc);
        saved = answer.name || doc.name;
        version = answer.version ?? null;
        nameInput.readOnly = true;
      }
      showErrors([]);
      outcome.textContent = `Saved ${saved}. It stays paused until you activate it.`;
      activate.hidden = false;
      activate.focus();
    } catch (error) {
      if (error instanceof ApiError && error.errors.length) {
        showErrors(error.errors);
        outcome.textContent = 'Not saved: fix the settings marked above.';
      } else if (error instanceof ApiError && error.status === 412) {
        outcome.textContent = 'Not saved: someone changed this destination meanwhile. Open it again to see their version.';
      } else {
        outcome.textContent = `Not saved: ${error.message}`;
      }
    }
  });
  activate.addEventListener('click', async () => {
    try {
      await post(`/destinations/${encodeURIComponent(saved)}/activate`, {});
      window.location.hash = '#/';
    } catch (error) {
      outcome.textContent = `Not activated: ${error.message}`;
    }
  });

  fill(screen,
    el('div', { class: 'screen-head' },
      el('h2', { id: 'editor-title', text: name ? `Edit ${name}` : 'New destination' }),
      el('a', { href: '#/', class: 'button quiet', text: 'Back to destinations' })),
    el('div', { class: 'editor' }, form, panel.node),
    el('div', { class: 'footer' }, outcome, el('div', { class: 'buttons' }, done, activate)));
  showBatching();

  async function load() {
    if (!name) { panel.follow(() => topics.values[0]); return; }
    try {
      const answer = await call('GET', `/destinations/${encodeURIComponent(name)}/config`);
      const data = answer.data || {};
      const d = data.destination || data.config || data;
      const etag = answer.headers.get('ETag');
      version = data.version ?? (etag ? etag.replace(/"/g, '') : null);
      await topics.set(d.source_topics);
      await credential.set(d.credential);
      await endpoint.set(d.endpoint);
      const b = d.batching || {};
      batching.box.checked = Boolean(b.enabled);
      batchSize.value = b.batch_size ?? 100;
      algorithm.value = b.algorithm || 'arrival_order';
      groupBy.set(b.attributes || []);
      for (const key of Object.keys(settings)) if (b[key] !== undefined && b[key] !== null) settings[key].value = b[key];
      const w = d.response_webhook || {};
      webhook.box.checked = w.enabled !== false;
      webhookTopic.value = w.topic || 'gorgias.responses';
      deadTopic.value = d.dead_letter_topic || 'gorgias.dead-letter';
      const from = d.start_from || 'earliest';
      start.value = from === 'earliest' || from === 'latest' ? from : 'timestamp';
      startAt.value = start.value === 'timestamp' ? from : '';
      showBatching();
      clearBanner('editor');
      if (data.source === 'file') {
        banner('editor', `${name} is defined in ${data.file || 'the config file'}: change it there. `
          + 'Here you can look at its requests and test them; Done is for destinations saved at runtime.', 'warning');
        done.disabled = true;
      }

      panel.follow(() => topics.values[0]);
    } catch (error) {
      banner('editor', `${name} cannot be edited here: ${error.message}`, 'warning');
    }
  }
  load();
  return () => clearBanner('editor');
}
