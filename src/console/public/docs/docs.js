// Renders /openapi.json as a reference page, in the browser, with no build step. Every value from
// the document is added as text (el() from the console's dom.js), never parsed as HTML.
import { el, flash } from '/console/dom.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** '#/components/schemas/Webhook' → 'Webhook' */
const refName = (ref) => ref.split('/').pop();

/** A JSON Schema as a short type expression: string (uuid), Webhook[], integer 1–50, … */
function typeOf(schema) {
  if (!schema || Object.keys(schema).length === 0) return 'any JSON';
  if (schema.$ref) return refName(schema.$ref);
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(' | ');
  if (schema.enum) return schema.enum.map((x) => JSON.stringify(x)).join(' | ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.type === 'array') return `${typeOf(schema.items)}[]`;
  const bits = [];
  if (schema.format) bits.push(schema.format);
  if (schema.minimum !== undefined || schema.maximum !== undefined)
    bits.push(`${schema.minimum ?? ''}–${schema.maximum ?? ''}`);
  if (schema.minLength !== undefined || schema.maxLength !== undefined)
    bits.push(`length ${schema.minLength ?? 0}–${schema.maxLength ?? '∞'}`);
  if (schema.minItems !== undefined || schema.maxItems !== undefined)
    bits.push(`${schema.minItems ?? 0}–${schema.maxItems ?? '∞'} items`);
  if (schema.pattern) bits.push(`/${schema.pattern}/`);
  if (schema.default !== undefined) bits.push(`default ${JSON.stringify(schema.default)}`);
  const type = schema.type ?? 'object';
  return bits.length ? `${type} (${bits.join(', ')})` : type;
}

/** An object schema as a table of its fields; nested objects and array items are expanded below. */
function fieldsTable(schema, components, depth = 0) {
  if (schema?.$ref) {
    const name = refName(schema.$ref);
    return el('div', {}, el('p', { class: 'ref' }, name), fieldsTable(components[name], components, depth));
  }
  if (schema?.type === 'array') return fieldsTable(schema.items, components, depth);
  if (!schema?.properties) return el('code', {}, typeOf(schema));
  const required = new Set(schema.required ?? []);
  const rows = Object.entries(schema.properties).map(([name, prop]) => {
    const nested =
      depth < 3 && (prop.properties || prop.items?.properties)
        ? fieldsTable(prop, components, depth + 1)
        : null;
    return el(
      'tr',
      {},
      el('td', {}, el('code', {}, name), required.has(name) ? '' : el('span', { class: 'opt' }, ' optional')),
      el('td', {}, el('code', {}, typeOf(prop))),
      el('td', {}, prop.description ?? '', nested),
    );
  });
  const closed = schema.additionalProperties === false ? 'no other fields' : '';
  return el(
    'table',
    { class: 'fields' },
    el('thead', {}, el('tr', {}, el('th', {}, 'field'), el('th', {}, 'type'), el('th', {}, closed))),
    el('tbody', {}, rows),
  );
}

function operationSection(method, path, op, components) {
  const id = op.operationId;
  const params = (op.parameters ?? []).map((p) =>
    el(
      'tr',
      {},
      el('td', {}, el('code', {}, p.name), p.required ? '' : el('span', { class: 'opt' }, ' optional')),
      el('td', {}, p.in),
      el('td', {}, el('code', {}, typeOf(p.schema))),
      el('td', {}, p.description ?? ''),
    ),
  );
  const body = op.requestBody?.content?.['application/json']?.schema;
  const responses = Object.entries(op.responses ?? {}).map(([status, r]) => {
    const schema = Object.values(r.content ?? {})[0]?.schema;
    const headers = Object.keys(r.headers ?? {});
    return el(
      'details',
      { class: `response s${status[0]}` },
      el(
        'summary',
        {},
        el('code', {}, status),
        ' ',
        r.description ?? '',
        headers.length ? ` (header ${headers.join(', ')})` : '',
      ),
      schema ? fieldsTable(schema, components) : null,
    );
  });
  const auth = { none: 'no key', key: 'any API key', admin: 'admin key' }[op['x-auth']] ?? '';
  return el(
    'section',
    { class: 'op', id },
    el('h3', {}, el('span', { class: `method ${method}` }, method.toUpperCase()), ' ', el('code', {}, path)),
    el('p', {}, op.summary ?? '', ' ', el('span', { class: 'auth' }, auth)),
    op.description ? el('p', { class: 'desc' }, op.description) : null,
    params.length
      ? el(
          'table',
          { class: 'fields' },
          el('thead', {}, el('tr', {}, ...['parameter', 'in', 'type', ''].map((t) => el('th', {}, t)))),
          el('tbody', {}, params),
        )
      : null,
    body
      ? el(
          'div',
          {},
          el('h4', {}, op.requestBody.required ? 'Body' : 'Body (optional)'),
          fieldsTable(body, components),
        )
      : null,
    el('h4', {}, 'Responses'),
    responses,
  );
}

function render(doc) {
  const components = doc.components?.schemas ?? {};
  const byTag = new Map((doc.tags ?? []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths ?? {}))
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? 'Other';
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push([method, path, op]);
    }
  const toc = document.getElementById('toc');
  toc.replaceChildren(
    ...[...byTag.values()].map(({ tag }) =>
      el('a', { href: `#tag-${tag.name.replace(/\W+/g, '-')}` }, tag.name),
    ),
  );
  const main = document.getElementById('main');
  main.replaceChildren(
    el(
      'section',
      { class: 'intro' },
      el('h2', {}, `${doc.info.title} ${doc.info.version}`),
      el('pre', { class: 'desc' }, doc.info.description ?? ''),
    ),
    ...[...byTag.values()].map(({ tag, ops }) =>
      el(
        'section',
        { class: 'tag', id: `tag-${tag.name.replace(/\W+/g, '-')}` },
        el('h2', {}, tag.name),
        tag.description ? el('p', {}, tag.description) : null,
        ops.map(([method, path, op]) => operationSection(method, path, op, components)),
      ),
    ),
  );
}

fetch('/openapi.json')
  .then((res) => {
    if (!res.ok) throw new Error(`/openapi.json answered ${res.status}`);
    return res.json();
  })
  .then(render)
  .catch((err) => flash(String(err.message ?? err), 'bad'));
