// The sample payload panel: sample records (read from the source topic without committing, or pasted)
// and the exact requests they would make with the current, unsaved settings, refreshed shortly after
// every change (older answers are discarded); in Test mode a request's body is editable and
// "Send Test Data" sends it once, after saying what it will create and whom it would email.

import { ApiError, Unreachable, get, post } from './api.js';
import { el, fill, pretty } from './dom.js';
import { banner, clearBanner, confirmAction, facts } from './ui.js';

const SETTLE_MS = 200; // wait for typing to pause; the answer then comes well within 300 ms
const SAMPLE_SIZE = 10;

function attributesOf(records) {
  const names = new Set();
  const walk = (value, prefix, depth) => {
    if (!value || typeof value !== 'object' || Array.isArray(value) || depth > 2) return;
    for (const [key, child] of Object.entries(value)) {
      const path = prefix ? `${prefix}.${key}` : key;
      names.add(path);
      walk(child, path, depth + 1);
    }
  };
  for (const record of records) walk(record && record.rawMessage ? record.rawMessage : record, '', 0);
  return [...names];
}

function recordNumbers(indexes) {
  const shown = (indexes || []).map((i) => (i >= 0 ? i + 1 : '?'));
  return `record${shown.length === 1 ? '' : 's'} ${shown.join(', ')}`;
}

function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function parsePasted(text) {
  const trimmed = text.trim();
  if (!trimmed) return [];
  if (trimmed.startsWith('[')) {
    const value = JSON.parse(trimmed);
    if (!Array.isArray(value)) throw new Error('expected a JSON array of records');
    return value;
  }
  return trimmed.split('\n').filter((line) => line.trim()).map((line, n) => {
    try {
      return JSON.parse(line);
    } catch (error) {
      throw new Error(`line ${n + 1}: ${error.message}`);
    }
  });
}

/** The panel. `destination()` gives the unsaved destination document (or null while a setting does
 *  not parse); `onErrors(items)` hears validation errors; `onAttributes(names)` the attributes seen. */
export function samplePanel({ destination, onErrors, onAttributes, exampleRecord }) {
  let records = [];
  let origin = 'none'; // topic | pasted | none
  let testing = false;
  let seq = 0;
  let inflight = null;
  let timer = null;
  let lastDoc = null;
  let lastUsed = [];
  const opened = new Set();

  const fromTopic = el('button', { type: 'button', class: 'tab', 'aria-pressed': 'true', text: 'From the topic' });
  const pasteTab = el('button', { type: 'button', class: 'tab', 'aria-pressed': 'false', text: 'Paste records' });
  const reload = el('button', { type: 'button', class: 'quiet', text: 'Read again' });
  const pasted = el('textarea', {
    id: 'pasted-records', rows: 6, spellcheck: 'false', hidden: true, 'aria-label': 'Sample records (JSON array or one JSON object per line)',
    placeholder: '{"ticket_id": 1, "tags": ["vip"]}\n{"ticket_id": 2, "tags": ["late"]}',
  });
  const pastedError = el('p', { class: 'field-error', role: 'alert', hidden: true });
  const source = el('p', { class: 'hint', id: 'sample-source' });
  const recordList = el('details', { class: 'records' }, el('summary', { text: 'Sample records' }), el('div'));
  const previewTab = el('button', { type: 'button', class: 'tab', 'aria-pressed': 'true', text: 'Preview' });
  const testTab = el('button', { type: 'button', class: 'tab', 'aria-pressed': 'false', text: 'Test' });
  const state = el('p', { class: 'hint', id: 'preview-state', role: 'status', 'aria-live': 'polite' });
  const items = el('ol', { class: 'items', id: 'preview-items', 'aria-label': 'Sample requests' });

  const node = el('section', { class: 'samples', 'aria-labelledby': 'samples-title' },
    el('div', { class: 'panel-head' }, el('h3', { id: 'samples-title', text: 'Sample payload' }),
      el('div', { class: 'tabs', role: 'group', 'aria-label': 'Panel mode' }, previewTab, testTab)),
    el('div', { class: 'tabs', role: 'group', 'aria-label': 'Sample records from' }, fromTopic, pasteTab, reload),
    pasted, pastedError, source, recordList, state, items);

  function showRecords() {
    const shown = records.length ? records : [];
    fill(recordList.lastElementChild, shown.map((r, i) => el('div', { class: 'record' },
      el('h4', { text: `Record ${i + 1}` }), el('pre', { class: 'json', text: pretty(r) }))));
    recordList.querySelector('summary').textContent = `Sample records (${shown.length})`;
    onAttributes?.(attributesOf(shown));
  }

  async function readTopic(topic) {
    if (!topic) {
      records = [];
      origin = 'none';
      source.textContent = 'Choose a source topic to read sample records from it, or paste records.';
      showRecords();
      schedule();
      return;
    }
    source.textContent = `Reading the latest records of ${topic}…`;
    try {
      const answer = await get(`/topics/${encodeURIComponent(topic)}/sample?limit=${SAMPLE_SIZE}`);
      records = (answer.records || []).map((r) => (r.value !== undefined && r.value !== null ? r.value : r.text));
      origin = 'topic';
      source.textContent = records.length
        ? `The latest ${records.length} record(s) of ${topic}, read without committing.`
        : `${topic} holds no records yet: paste some, or the template's example is used.`;
      clearBanner('kafka');
    } catch (error) {
      records = [];
      origin = 'none';
      source.textContent = `Could not read ${topic}: ${error.message}`;
      if (error instanceof ApiError && error.status === 503) banner('kafka', error.message);
    }
    showRecords();
    schedule();
  }

  function usePasted() {
    try {
      records = parsePasted(pasted.value);
      pastedError.hidden = true;
      origin = 'pasted';
      source.textContent = `${records.length} pasted record(s).`;
    } catch (error) {
      pastedError.hidden = false;
      pastedError.textContent = `Not valid JSON: ${error.message}`;
      return;
    }
    showRecords();
    schedule();
  }

  let topicOf = () => null;
  fromTopic.addEventListener('click', () => {
    fromTopic.setAttribute('aria-pressed', 'true');
    pasteTab.setAttribute('aria-pressed', 'false');
    pasted.hidden = true;
    pastedError.hidden = true;
    readTopic(topicOf());
  });
  pasteTab.addEventListener('click', () => {
    pasteTab.setAttribute('aria-pressed', 'true');
    fromTopic.setAttribute('aria-pressed', 'false');
    pasted.hidden = false;
    if (!pasted.value.trim() && records.length) pasted.value = records.map((r) => JSON.stringify(r)).join('\n');
    pasted.focus();
    usePasted();
  });
  reload.addEventListener('click', () => {
    if (pasted.hidden) readTopic(topicOf());
    else usePasted();
  });
  pasted.addEventListener('input', usePasted);
  for (const [tab, on] of [[previewTab, false], [testTab, true]]) {
    tab.addEventListener('click', () => {
      testing = on;
      previewTab.setAttribute('aria-pressed', String(!on));
      testTab.setAttribute('aria-pressed', String(on));
      schedule(0);
    });
  }

  function schedule(delay = SETTLE_MS) {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay);
  }

  async function refresh() {
    const doc = destination();
    seq += 1;
    const mine = seq;
    if (inflight) inflight.abort();
    if (!doc) return;
    if (!doc.endpoint.template && !doc.endpoint.url) {
      onErrors?.([]);
      fill(items);
      state.textContent = 'Choose an endpoint (a template, or a method and URL) to see the requests.';
      return;
    }
    let used = records;
    let note = '';
    if (!used.length) {
      const example = exampleRecord();
      used = example ? [example] : [];
      note = example ? ' (the template\'s example record)' : '';
    }
    if (!used.length) {
      fill(items);
      state.textContent = 'No sample records yet.';
      return;
    }
    inflight = new AbortController();
    state.textContent = 'Updating…';
    try {
      const answer = await post('/preview', { destination: doc, records: used }, { signal: inflight.signal });
      if (mine !== seq) return; // a newer change is on its way: this answer is stale
      onErrors?.(answer.errors || []);
      if (answer.errors && answer.errors.length) {
        fill(items);
        state.textContent = 'Fix the settings marked on the left to see the requests.';
        return;
      }
      lastDoc = doc;
      lastUsed = used;
      render(answer.items || []);
      const calls = (answer.items || []).filter((i) => i.kind === 'request').length;
      const account = answer.example_credential ? ' Shown for an example account: choose a credential.' : '';
      state.textContent = `${used.length} record(s)${note} → ${calls} request(s), ${(answer.items || []).length - calls} dead letter(s).${account}`;
    } catch (error) {
      if (error.name === 'AbortError' || mine !== seq) return;
      if (!(error instanceof Unreachable)) {
        state.textContent = error.message;
      }
    }
  }

  function render(list) {
    for (const d of items.querySelectorAll('details[open]')) opened.add(d.dataset.index);
    for (const d of items.querySelectorAll('details:not([open])')) opened.delete(d.dataset.index);
    fill(items, list.map((item, n) => (item.kind === 'dead_letter' ? deadLetter(item, n) : request(item, n))));
  }

  function deadLetter(item, n) {
    return el('li', { class: 'item dead', dataset: { index: String(n) } },
      el('p', {}, el('strong', { text: `#${n + 1} dead letter` }), ` — ${recordNumbers(item.records)} (${item.stage})`),
      el('p', { class: 'reason', text: item.reason }),
      item.field ? el('p', { class: 'hint' }, 'field: ', el('code', { text: item.field })) : null);
  }

  function request(item, n) {
    const emails = item.emails || [];
    const details = el('details', { dataset: { index: String(n) }, open: opened.has(String(n)) },
      el('summary', {},
        el('span', { class: 'method', text: item.method }), ' ', el('span', { class: 'url', text: item.url }),
        el('span', { class: 'hint', text: ` — ${recordNumbers(item.records)}` }),
        emails.length ? el('span', { class: 'flag', text: ' would email' }) : null),
      emails.length ? el('ul', { class: 'emails' }, emails.map((e) => el('li', { text: e }))) : null,
      facts(Object.entries(item.headers || {})),
      item.steps ? el('div', {}, el('h4', { text: 'This call sends, in order' }),
        el('ol', {}, item.steps.map((s) => el('li', { text: s })))) : null,
      testing ? tester(item) : el('pre', { class: 'json body', text: item.body === null ? '(no body)' : pretty(item.body) }));
    return el('li', { class: 'item', dataset: { index: String(n) } }, details);
  }

  function tester(item) {
    const area = el('textarea', { class: 'payload', rows: 10, spellcheck: 'false', 'aria-label': 'Test payload (JSON)' });
    area.value = item.body === null ? '' : pretty(item.body);
    const check = el('p', { class: 'hint', role: 'status' });
    const send = el('button', { type: 'button', class: 'primary', text: 'Send Test Data' });
    const result = el('div', { class: 'test-result' });
    const validate = () => {
      try {
        if (area.value.trim()) JSON.parse(area.value);
        check.textContent = 'Valid JSON.';
        check.className = 'hint ok';
        area.removeAttribute('aria-invalid');
        send.disabled = false;
      } catch (error) {
        check.textContent = `Not valid JSON: ${error.message}`;
        check.className = 'field-error';
        area.setAttribute('aria-invalid', 'true');
        send.disabled = true;
      }
    };
    area.addEventListener('input', validate);
    validate();
    const recordIndex = (item.records || [])[0];
    send.addEventListener('click', () => sendTest({
      destination: lastDoc,
      record: recordIndex >= 0 ? lastUsed[recordIndex] : undefined,
      payload: area.value.trim() ? JSON.parse(area.value) : undefined,
    }, result));
    return el('div', { class: 'tester' }, area, check, el('div', { class: 'buttons' }, send), result);
  }

  async function sendTest(body, result) {
    fill(result);
    let plan;
    try {
      plan = await post('/test', body);
    } catch (error) {
      fill(result, el('p', { class: 'field-error', role: 'alert', text: error.message }));
      return;
    }
    const emails = plan.emails || [];
    const sure = await confirmAction({
      title: 'Send test data?', ok: 'Send',
      body: [el('p', { text: sentence(plan.summary || 'this sends one request to Gorgias.') }),
        emails.length ? el('div', { class: 'warning' }, el('strong', { text: 'Gorgias would email:' }),
          el('ul', {}, emails.map((e) => el('li', { text: e })))) : el('p', { text: 'Nobody would be emailed.' }),
        plan.caution ? el('p', { class: 'warning', text: sentence(plan.caution) }) : null,
        el('p', { class: 'hint', text: 'It goes through the account\'s shared rate limit, once (no retry).' })],
    });
    if (!sure) return;
    fill(result, el('p', { class: 'hint', text: 'Sending…' }));
    try {
      showResult(await post('/test', { ...body, confirm: true }), result, body.destination);
    } catch (error) {
      fill(result, el('p', { class: 'field-error', role: 'alert', text: error.message }));
    }
  }

  function showResult(answer, result, doc) {
    const response = answer.response || {};
    const status = response.status;
    if (status === null || status === undefined || status >= 500) {
      banner('gorgias', `Gorgias did not answer the test well: ${answer.error || `HTTP ${status}`}`);
    } else clearBanner('gorgias');
    const undo = answer.undo;
    const undoButton = undo ? el('button', { type: 'button', class: 'danger', text: `Delete ${undo.what}` }) : null;
    const undoResult = el('p', { class: 'hint', role: 'status' });
    fill(result, el('div', { class: answer.ok ? 'test-answer ok' : 'test-answer failed', role: 'status' },
      el('strong', { text: status ? `HTTP ${status}` : 'No answer' }),
      facts([['Latency', `${Math.round(answer.elapsed_ms ?? 0)} ms`],
        ['Waited for the rate limit', `${Math.round(answer.rate_limit_wait_ms ?? 0)} ms`],
        ['Error', answer.error || '']]),
      el('h4', { text: 'Response headers' }), facts(Object.entries(response.headers || {})),
      el('h4', { text: 'Response body' }), el('pre', { class: 'json', text: pretty(response.body ?? '') }),
      undoButton ? el('div', { class: 'undo' }, el('p', { text: `The test created ${undo.what}.` }), undoButton, undoResult) : null));
    undoButton?.addEventListener('click', async () => {
      const sure = await confirmAction({
        title: `Delete ${undo.what}?`, ok: 'Delete', danger: true,
        body: el('p', { text: `This sends ${undo.method} ${undo.url} to Gorgias, once.` }),
      });
      if (!sure) return;
      try {
        const done = await post('/test/undo', { destination: doc, undo });
        const s = done.response?.status;
        undoResult.textContent = done.ok ? `Deleted (HTTP ${s}).` : `Not deleted: ${done.error || `HTTP ${s}`}`;
        if (done.ok) undoButton.disabled = true;
      } catch (error) {
        undoResult.textContent = error.message;
      }
    });
  }

  return {
    node,
    /** Read the sample again when the first source topic changes (`topic()` names it). */
    follow(topic) {
      topicOf = topic;
      if (pasted.hidden) readTopic(topicOf());
    },
    schedule,
    refresh,
    get records() { return records; },
    /** The attributes seen in the sample records. */
    attributes() { return attributesOf(records); },
  };
}
