// The destinations screen: every destination with its state, lag, counts and last error, and a menu
// (Activate, Pause, Edit, Delete). Refreshed every two seconds; rows are updated in place, so an open
// menu or the keyboard focus survives a refresh.

import { ApiError, call, get, post } from './api.js';
import { add, el, fill, when } from './dom.js';
import { banner, clearBanner, confirmAction } from './ui.js';

const REFRESH_MS = 2000;

function endpointText(d) {
  const e = d.endpoint || {};
  if (e.template) return `template ${e.template}`;
  if (e.method || e.url) return `${e.method || ''} ${e.url || ''}`.trim();
  return '';
}

function lagOf(d) {
  const parts = Array.isArray(d.partitions) ? d.partitions : [];
  const known = parts.map((p) => p.lag).filter((n) => typeof n === 'number');
  if (!known.length) return d.state === 'active' && parts.length ? '…' : '—';
  return String(known.reduce((a, b) => a + b, 0));
}

function stateOf(d) {
  return d.state || (d.active ? 'active' : 'paused');
}

const SCOPES_HELP = 'The OAuth app was not granted these scopes, which this destination needs: authorize the app '
  + 'again with them and give the worker its new refresh token (README, OAuth apps).';

/** The state cell: the state, a warning badge when the destination's OAuth app lacks scopes it needs
 *  (`scopes_missing`), and the reason of a hold or failure (else, for the badge, what to do). */
function stateCell(d, state) {
  const missing = Array.isArray(d.scopes_missing) ? d.scopes_missing.filter((s) => typeof s === 'string') : [];
  const badge = missing.length ? el('span', { class: 'badge badge-warning scopes-missing', title: SCOPES_HELP,
    text: `scopes missing: ${missing.join(' ')}` }) : null;
  const why = d.reason || (missing.length ? SCOPES_HELP : '');
  return [el('span', { class: `state state-${state}`, text: state }), badge ? ' ' : null, badge,
    why ? el('span', { class: 'reason', text: why }) : null];
}

class Row {
  constructor(name, actions) {
    this.name = name;
    this.cells = {};
    const cell = (key, label) => {
      this.cells[key] = el('td', { dataset: { label, col: key } });
      return this.cells[key];
    };
    this.menu = el('details', { class: 'menu' },
      el('summary', { 'aria-label': `Actions for ${name}`, text: 'Actions' }),
      el('div', { class: 'menu-items', role: 'group', 'aria-label': `Actions for ${name}` },
        ['Activate', 'Pause', 'Edit', 'Delete'].map((what) => el('button', {
          type: 'button', class: what === 'Delete' ? 'danger-text' : '', dataset: { action: what.toLowerCase() },
          onclick: () => { this.menu.open = false; actions(what.toLowerCase(), name); },
        }, what))));
    this.menu.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.menu.open) {
        this.menu.open = false;
        this.menu.querySelector('summary').focus();
      }
    });
    this.node = el('tr', { dataset: { destination: name } },
      el('th', { scope: 'row', dataset: { label: 'Name' } }, name),
      cell('endpoint', 'Endpoint'), cell('state', 'State'), cell('lag', 'Lag'),
      cell('counts', 'Delivered / dead-lettered / unknown'), cell('error', 'Last error'),
      el('td', { class: 'actions', dataset: { label: 'Actions' } }, this.menu));
  }

  update(d) {
    const state = stateOf(d);
    this.cells.endpoint.textContent = endpointText(d);
    fill(this.cells.state, stateCell(d, state));
    this.cells.lag.textContent = lagOf(d);
    const r = d.records || {};
    this.cells.counts.textContent = `${r.delivered ?? 0} / ${r.dead_lettered ?? 0} / ${r.unknown ?? 0}`;
    const last = d.last_error;
    fill(this.cells.error, last ? [el('time', { datetime: last.at, text: when(last.at) }), ' ', last.message] : '—');
    for (const button of this.menu.querySelectorAll('button')) {
      const action = button.dataset.action;
      button.disabled = (action === 'activate' && state === 'active') || (action === 'pause' && state === 'paused');
    }
  }
}

/** Show the destinations screen in `screen`; returns the function that leaves it. */
export function showList(screen) {
  const rows = new Map();
  const message = el('p', { class: 'message', role: 'alert', hidden: true });
  const body = el('tbody');
  const empty = el('p', { class: 'empty', hidden: true }, 'No destination yet. ',
    el('a', { href: '#/new', text: 'Create the first one' }), '.');
  const table = el('table', { class: 'destinations' },
    el('caption', { class: 'visually-hidden', text: 'Destinations' }),
    el('thead', {}, el('tr', {}, ['Name', 'Endpoint', 'State', 'Lag', 'Delivered / dead-lettered / unknown',
      'Last error', 'Actions'].map((h) => el('th', { scope: 'col', text: h })))),
    body);
  fill(screen,
    el('div', { class: 'screen-head' }, el('h2', { text: 'Destinations' }),
      el('a', { class: 'button primary', href: '#/new', id: 'new-destination', text: 'New destination' })),
    message, el('div', { class: 'table-wrap' }, table), empty);

  const say = (text) => {
    message.hidden = !text;
    message.textContent = text || '';
  };

  async function act(action, name) {
    const path = `/destinations/${encodeURIComponent(name)}`;
    say('');
    if (action === 'edit') {
      window.location.hash = `#/edit/${encodeURIComponent(name)}`;
      return;
    }
    try {
      if (action === 'delete') {
        const sure = await confirmAction({
          title: `Delete ${name}?`, ok: 'Delete', danger: true,
          body: el('p', {}, 'The destination ', el('strong', { text: name }),
            ' stops and its settings are removed. Records already on its topics stay there.'),
        });
        if (!sure) return;
        await call('DELETE', path);
        say(`Deleted ${name}.`);
      } else {
        await post(`${path}/${action}`, {});
      }
    } catch (error) {
      say(error instanceof ApiError ? `${name}: ${error.message}` : error.message);
    }
    refresh();
  }

  let timer = null;
  let stopped = false;
  async function refresh() {
    clearTimeout(timer);
    try {
      const status = await get('/destinations');
      if (status.trouble) banner('kafka', `The worker cannot use Kafka now: ${status.trouble}`);
      else clearBanner('kafka');
      const seen = new Set();
      for (const d of status.destinations || []) {
        seen.add(d.name);
        let row = rows.get(d.name);
        if (!row) {
          row = new Row(d.name, act);
          rows.set(d.name, row);
          add(body, row.node);
        }
        row.update(d);
      }
      for (const [name, row] of rows) {
        if (!seen.has(name)) {
          row.node.remove();
          rows.delete(name);
        }
      }
      empty.hidden = rows.size > 0;
      table.hidden = rows.size === 0;
    } catch (error) {
      if (!(error instanceof ApiError)) { /* the banner says the worker does not answer */ } else say(error.message);
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
