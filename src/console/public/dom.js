// DOM helpers. The safety rule of the console lives here: every value is added as a text node or
// an attribute value, never parsed as HTML (no HTML-string DOM API is used anywhere), and data
// never becomes a URL.

/** el('a', {href: '#/x', onclick: fn}, 'text', child): children are text or nodes. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The status line under the header: a success note or an error, as text. */
export function flash(message, kind = 'ok') {
  const box = document.getElementById('flash');
  box.textContent = message;
  box.className = kind;
  box.hidden = !message;
}

export const time = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—');
export const shortId = (id) => (id ? `${id.slice(0, 8)}…${id.slice(-4)}` : '—');
export const badge = (kind, text = kind) => el('span', { class: `badge ${kind}` }, text);
export const link = (hash, text) => el('a', { href: hash }, text);
export const percent = (r) => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)} %`);

/** A datetime-local value ("2026-01-02T03:04", local time) from an ISO string, and back. */
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}
export const fromLocalInput = (value) => (value ? new Date(value).toISOString() : '');

const headRow = (titles) => el('thead', {}, el('tr', {}, ...titles.map((t) => el('th', {}, t))));

/** A plain table: titles, and one array of cells per row. */
export function table(titles, rows, props = {}) {
  const body = rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c))));
  return el('table', props, headRow(titles), el('tbody', {}, body));
}

/**
 * A table fed page by page: columns are [{title, cell: row => text | node}], loadPage(cursor)
 * resolves to the API's {data, next_cursor}. Call load() once; "Load more" fetches the next pages.
 */
export function pagedTable(columns, loadPage, { emptyText = 'Nothing to show.', onError } = {}) {
  const tbody = el('tbody');
  const empty = el('p', { class: 'empty', hidden: true }, emptyText);
  const more = el('button', { type: 'button', class: 'more', hidden: true }, 'Load more');
  let cursor;
  async function load() {
    more.disabled = true;
    const page = await loadPage(cursor);
    for (const row of page.data) tbody.append(el('tr', {}, ...columns.map((c) => el('td', {}, c.cell(row)))));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    more.disabled = false;
    empty.hidden = tbody.rows.length > 0;
  }
  more.addEventListener('click', () => load().catch(onError));
  const node = el('table', {}, headRow(columns.map((c) => c.title)), tbody);
  return { node: el('div', {}, node, empty, more), load };
}
