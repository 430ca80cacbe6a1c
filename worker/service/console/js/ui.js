// What every screen shares: banners (the worker, Kafka or Gorgias in trouble), the confirmation
// dialog and the control-token dialog.

import { add, el, fill } from './dom.js';

const banners = new Map();

/** Show (or update) the banner `key` with `text`; `kind` is "error" or "warning". */
export function banner(key, text, kind = 'error') {
  const area = document.getElementById('banners');
  let node = banners.get(key);
  if (!node) {
    node = el('div', { class: `banner ${kind}`, dataset: { banner: key } });
    banners.set(key, node);
    area.append(node);
  }
  node.className = `banner ${kind}`;
  fill(node, el('strong', { text: kind === 'error' ? 'Problem: ' : 'Note: ' }), text);
}

export function clearBanner(key) {
  const node = banners.get(key);
  if (node) {
    node.remove();
    banners.delete(key);
  }
}

/** Ask before something that cannot be undone; resolves true when confirmed. `body` is nodes or text. */
export function confirmAction({ title, body, ok = 'Confirm', danger = false }) {
  const dialog = document.getElementById('confirm-dialog');
  document.getElementById('confirm-title').textContent = title;
  fill(document.getElementById('confirm-body'), body);
  const okButton = document.getElementById('confirm-ok');
  okButton.textContent = ok;
  okButton.className = danger ? 'danger' : 'primary';
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

/** Ask for the control token; resolves to it, or null. */
export function askToken(reason) {
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const why = document.getElementById('token-why');
  why.textContent = reason
    ? `${reason} Enter the worker's control token; it is kept for this tab only.`
    : 'This worker needs its control token for changes. It is kept for this tab only.';
  input.value = '';
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      if (dialog.returnValue === 'ok' && input.value.trim()) resolve(input.value.trim());
      else resolve(dialog.returnValue === 'forget' ? '' : null);
      input.value = '';
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
}

/** A small definition list of label/value pairs (values as text). */
export function facts(pairs) {
  const list = el('dl', { class: 'facts' });
  for (const [label, value] of pairs) {
    if (value === undefined || value === null || value === '') continue;
    add(list, el('dt', { text: label }), el('dd', {}, value));
  }
  return list;
}
