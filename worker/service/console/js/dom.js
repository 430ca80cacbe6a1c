// Building the page: every value from the worker, a record or the user goes in as text, never as HTML.

/** A new element: `props` sets attributes (`class`, `text`, `on<event>` handlers); children are
 *  nodes or strings (strings become text nodes). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  add(node, children);
  return node;
}

/** Append children (nodes, strings as text, arrays flattened; null and false skipped). */
export function add(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replace every child of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  return add(node, children);
}

/** Pretty JSON of any value, for a <pre>. */
export function pretty(value) {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

let counter = 0;
/** A fresh id for label/aria links. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled control: `<div class="field" data-path=...><label>...</label>control<p class=hint/><p class=error/></div>`. */
export function field(label, control, { path, hint, wide } = {}) {
  if (!control.id) control.id = uid('f');
  const error = el('p', { class: 'field-error', id: `${control.id}-error`, hidden: true });
  const hintNode = hint ? el('p', { class: 'hint', id: `${control.id}-hint`, text: hint }) : null;
  const described = [hintNode ? hintNode.id : null, error.id].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', described);
  return el('div', { class: wide ? 'field wide' : 'field', dataset: path ? { path } : {} },
    el('label', { for: control.id, text: label }), control, hintNode, error);
}

/** A <select> of `[value, label]` pairs. */
export function select(options, value, props = {}) {
  const node = el('select', props);
  for (const [v, label] of options) node.append(el('option', { value: v, text: label }));
  if (value !== undefined && value !== null) node.value = value;
  return node;
}

/** A checkbox with its label on the right; `path` names the setting for validation errors. */
export function checkbox(label, checked, { path } = {}) {
  const box = el('input', { type: 'checkbox', id: uid('c') });
  box.checked = Boolean(checked);
  const error = el('p', { class: 'field-error', id: `${box.id}-error`, hidden: true });
  box.setAttribute('aria-describedby', error.id);
  const node = el('div', { class: 'check', dataset: path ? { path } : {} },
    box, el('label', { for: box.id, text: label }), error);
  return { box, node };
}

/** A short, human time: "14:02:11" today, else the date too. */
export function when(iso) {
  if (!iso) return '';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return String(iso);
  const today = new Date().toDateString() === t.toDateString();
  return today ? t.toLocaleTimeString() : t.toLocaleString();
}
