// A list of chosen values shown as chips, each with an X to remove it, chosen from a list of
// suggestions (the attributes seen in the sample records) or typed.

import { el, fill, uid } from './dom.js';

/** A chips control. `onchange()` is called after every change. */
export function chips({ label, path, hint, onchange }) {
  let values = [];
  let suggestions = [];
  const id = uid('chips');
  const list = el('ul', { class: 'chips', 'aria-label': `${label}: chosen` });
  const input = el('input', { id, type: 'text', list: `${id}-options`, autocomplete: 'off', spellcheck: 'false' });
  const options = el('datalist', { id: `${id}-options` });
  const addButton = el('button', { type: 'button', class: 'quiet', text: 'Add' });
  const error = el('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const hintNode = hint ? el('p', { class: 'hint', id: `${id}-hint`, text: hint }) : null;
  input.setAttribute('aria-describedby', [hintNode?.id, error.id].filter(Boolean).join(' '));

  function render() {
    fill(list, values.map((value) => el('li', { class: 'chip' },
      el('span', { text: value }),
      el('button', {
        type: 'button', class: 'chip-x', 'aria-label': `Remove ${value}`, text: '×',
        onclick: () => {
          values = values.filter((v) => v !== value);
          render();
          onchange?.();
          input.focus();
        },
      }))));
    list.hidden = values.length === 0;
    fill(options, suggestions.filter((s) => !values.includes(s)).map((s) => el('option', { value: s })));
  }

  function addTyped() {
    const value = input.value.trim();
    if (!value) return;
    if (!values.includes(value)) values = [...values, value];
    input.value = '';
    render();
    onchange?.();
  }
  addButton.addEventListener('click', addTyped);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      addTyped();
    }
  });
  input.addEventListener('change', () => {
    if (suggestions.includes(input.value.trim())) addTyped();
  });

  const node = el('div', { class: 'field', dataset: path ? { path } : {} },
    el('label', { for: id, text: label }), list,
    el('div', { class: 'inline' }, input, addButton), options, hintNode, error);
  render();
  return {
    node,
    input,
    get values() { return [...values]; },
    set(next) { values = [...new Set(next || [])]; render(); },
    suggest(next) { suggestions = [...new Set(next)].sort(); render(); },
  };
}
