// The endpoint: a pre-built template (each with its explanation) or a manual call.

import { get } from './api.js';
import { chips } from './chips.js';
import { el, field, fill, pretty, select, uid } from './dom.js';
import { facts } from './ui.js';

let catalog = null;
/** The template catalog (GET /templates), fetched once. */
export async function templates() {
  if (!catalog) catalog = get('/templates').then((answer) => answer.templates || []).catch((error) => {
    catalog = null;
    throw error;
  });
  return catalog;
}

function explanation(t) {
  const attrs = Object.entries(t.attributes || {});
  const b = t.batching || {};
  return el('details', { class: 'template-help', open: true },
    el('summary', {}, el('strong', { text: t.name }), ` — ${t.summary}`),
    facts([
      ['Request', `${t.method} ${t.url}`],
      ['Batching', b.description || ''],
      ['Batch by', b.batchable && b.key && b.key.length ? b.key.join(', ') : ''],
      ['Emails', t.may_email ? (t.emails || 'may email customers in mode: send') : 'never emails anyone'],
      ['Requests per call', t.requests || ''],
    ]),
    attrs.length ? el('div', {},
      el('h4', { text: 'Record attributes it reads' }),
      el('dl', { class: 'attributes' }, attrs.map(([name, what]) => [el('dt', { text: name }), el('dd', { text: what })]))) : null,
    t.example && t.example.record ? el('div', {},
      el('h4', { text: 'Example record' }),
      el('pre', { class: 'json', text: pretty(t.example.record) })) : null);
}

/** The endpoint section; `onchange()` after every change. */
export function endpointSection({ onchange }) {
  const name = uid('mode');
  const useTemplate = el('input', { type: 'radio', name, value: 'template', id: `${name}-t` });
  const useManual = el('input', { type: 'radio', name, value: 'manual', id: `${name}-m` });
  useTemplate.checked = true;
  const modes = el('fieldset', { class: 'modes', dataset: { path: 'endpoint' } },
    el('legend', { text: 'Configure the call' }),
    el('div', { class: 'check' }, useTemplate, el('label', { for: useTemplate.id, text: 'Template' })),
    el('div', { class: 'check' }, useManual, el('label', { for: useManual.id, text: 'Manual' })),
    el('p', { class: 'field-error', hidden: true }));

  // template
  const picker = select([['', 'Choose an endpoint…']], '', { id: 'template-select' });
  const help = el('div', { class: 'template-help-box' });
  const mode = select([['import', 'import: stored as history, nobody is emailed'],
    ['send', 'send: Gorgias emails customers (outgoing messages, surveys)']], 'import', { id: 'template-mode' });
  const modeField = field('Messages', mode, { path: 'endpoint.template_options.mode' });
  const options = el('textarea', { rows: 3, spellcheck: 'false', placeholder: '{"mapping": {"subject": "title"}}', id: 'template-options' });
  const optionsField = field('Template options (JSON, optional)', options, {
    path: 'endpoint.template_options', hint: 'fields, mapping, external_id, url_attributes, dedupe — see the README',
  });
  const templatePart = el('div', { class: 'endpoint-template' },
    field('Endpoint', picker, { path: 'endpoint.template' }), help, modeField, optionsField);

  // manual
  const method = select(['POST', 'PUT', 'PATCH', 'DELETE'].map((m) => [m, m]), 'POST', { id: 'manual-method' });
  const format = select([['json', 'JSON'], ['form', 'form (urlencoded)']], 'json', { id: 'manual-format' });
  const url = el('input', { type: 'text', id: 'manual-url', spellcheck: 'false', placeholder: 'https://{domain}.gorgias.com/api/tickets/{ticket_id}' });
  const headers = el('input', { type: 'text', id: 'manual-headers', spellcheck: 'false', placeholder: 'header1:value1,header2:value2' });
  const exclude = chips({
    label: 'Exclude attributes', path: 'endpoint.exclude_attributes', onchange,
    hint: 'record attributes left out before the request is made; suggestions come from the sample records',
  });
  const manualPart = el('div', { class: 'endpoint-manual', hidden: true },
    el('div', { class: 'row' }, field('Method', method, { path: 'endpoint.method' }),
      field('Content format', format, { path: 'endpoint.content_format' })),
    field('URL', url, { path: 'endpoint.url', hint: '{attribute} placeholders take the record\'s value; {domain} the credential\'s' }),
    field('Request headers', headers, { path: 'endpoint.headers', hint: 'comma-separated name:value pairs; the credential\'s authentication is added by itself' }));

  let byName = new Map();
  function describe() {
    const t = byName.get(picker.value);
    fill(help, t ? explanation(t) : null);
    modeField.hidden = !(t && t.may_email);
  }
  function optionsValue() {
    const text = options.value.trim();
    const error = optionsField.querySelector('.field-error');
    let parsed = {};
    if (text) {
      try {
        parsed = JSON.parse(text);
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('must be a JSON object');
        error.hidden = true;
      } catch (e) {
        error.hidden = false;
        error.textContent = `not valid JSON: ${e.message}`;
        return null;
      }
    } else error.hidden = true;
    const t = byName.get(picker.value);
    if (t && t.may_email && mode.value !== 'import') parsed = { ...parsed, mode: mode.value };
    return parsed;
  }
  function switchMode() {
    templatePart.hidden = !useTemplate.checked;
    manualPart.hidden = !useManual.checked;
  }
  for (const node of [useTemplate, useManual]) node.addEventListener('change', () => { switchMode(); onchange?.(); });
  picker.addEventListener('change', () => { describe(); onchange?.(); });
  for (const node of [mode, method, format]) node.addEventListener('change', () => onchange?.());
  for (const node of [options, url, headers]) node.addEventListener('input', () => onchange?.());

  const ready = templates().then((list) => {
    byName = new Map(list.map((t) => [t.name, t]));
    const keep = picker.value;
    fill(picker, el('option', { value: '', text: 'Choose an endpoint…' }),
      list.map((t) => el('option', { value: t.name, text: `${t.name} — ${t.method} ${t.path}` })));
    picker.value = keep;
    describe();
  }).catch(() => {});

  const node = el('fieldset', { class: 'section', id: 'endpoint-section' },
    el('legend', { text: 'Endpoint' }), modes, templatePart, manualPart, exclude.node);
  return {
    node,
    ready,
    /** The template chosen (its catalog entry), or null. */
    template() { return useTemplate.checked ? (byName.get(picker.value) || null) : null; },
    /** `endpoint` of the destination, or null while the options JSON does not parse. */
    value() {
      let out;
      if (useTemplate.checked) {
        const opts = optionsValue();
        if (opts === null) return null;
        out = picker.value ? { template: picker.value } : {};
        if (picker.value && Object.keys(opts).length) out.template_options = opts;
      } else {
        out = { method: method.value, url: url.value.trim(), content_format: format.value };
        if (headers.value.trim()) out.headers = headers.value.trim();
      }
      if (exclude.values.length) out.exclude_attributes = exclude.values;
      return out;
    },
    async set(e) {
      await ready;
      const endpoint = e || {};
      useTemplate.checked = Boolean(endpoint.template) || !endpoint.url;
      useManual.checked = !useTemplate.checked;
      picker.value = endpoint.template || '';
      const opts = { ...(endpoint.template_options || {}) };
      mode.value = opts.mode === 'send' ? 'send' : 'import';
      delete opts.mode;
      options.value = Object.keys(opts).length ? JSON.stringify(opts) : '';
      method.value = endpoint.method || 'POST';
      format.value = endpoint.content_format || 'json';
      url.value = endpoint.url || '';
      const h = endpoint.headers;
      headers.value = typeof h === 'string' ? h : Object.entries(h || {}).map(([k, v]) => `${k}:${v}`).join(',');
      exclude.set(endpoint.exclude_attributes || []);
      switchMode();
      describe();
    },
    suggestAttributes(names) { exclude.suggest(names); },
    excludeControl: exclude,
  };
}
