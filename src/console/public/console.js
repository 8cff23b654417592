// Postbox operator console: a static page over the JSON API, no build step, no framework.
// One small function per page; render() picks the page from the location hash.
// Every value from the API goes through el() (text nodes only; see dom.js).
import { api, ApiError, clearKey, getKey, query, setKey } from './api.js';
import { badge, el, flash, link, pagedTable, percent, shortId, table, time } from './dom.js';
import { fromLocalInput, toLocalInput } from './dom.js';
import { quotasPage } from './quota-page.js';
import { webhookPages } from './webhook-pages.js';

const STATUSES = ['pending', 'in_flight', 'succeeded', 'failed', 'cancelled'];

const main = document.getElementById('main');
let session = null; // {kind: 'admin' | 'tenant', tenant_id} of the pasted key
let renderSeq = 0; // a page render checks it is still the newest before touching the DOM
let loginMessage; // why the login form is shown again (key refused), until the next login

const enc = encodeURIComponent;
const deliveryLink = (id) => link(`#/deliveries/${enc(id)}`, shortId(id));
const tenantColumn = () =>
  session?.kind === 'admin' ? [{ title: 'Tenant', cell: (r) => el('code', {}, shortId(r.tenant_id)) }] : [];
// last_error is the error of the most recent *failed* attempt; it stays after a later success, so
// it is shown beside the last status code only while the delivery has not succeeded.
const lastResult = (d) => [
  d.last_status_code ? el('code', {}, String(d.last_status_code)) : null,
  d.last_error && d.status !== 'succeeded' ? el('span', { class: 'error-text' }, ` ${d.last_error}`) : null,
];
/** Webhook id -> a readable name (description, else URL), for the tables that list ids. */
async function webhookNames() {
  const { data } = await api('GET', 'webhooks?limit=500');
  const names = new Map(data.map((w) => [w.id, w.description || w.url]));
  return { webhooks: data, nameOf: (id) => names.get(id) ?? shortId(id) };
}

/** A button that runs an API action, disabled while it runs; errors go to the status line. */
function actionButton(label, props, action) {
  const button = el('button', { type: 'button', ...props }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action(button);
    } catch (e) {
      button.disabled = false;
      showError(e);
    }
  });
  return button;
}

// ---- Pages -----------------------------------------------------------------------------------

function loginPage(message) {
  const input = el('input', { type: 'password', id: 'api-key', autocomplete: 'off', required: true });
  const error = el('p', { class: 'error', id: 'login-error', role: 'alert' }, message ?? '');
  async function submit(event) {
    event.preventDefault();
    setKey(input.value.trim());
    try {
      session = await api('GET', 'console/api/session');
      loginMessage = undefined;
      // Stay on a deep link opened before logging in; the login route itself goes home.
      if (!location.hash || location.hash === '#/login') location.hash = '#/webhooks';
      else render();
    } catch (e) {
      clearKey();
      error.textContent = e.status === 401 ? 'That API key was not accepted.' : e.message;
    }
  }
  const form = el('form', { id: 'login-form', onsubmit: submit }, [
    el('label', { for: 'api-key' }, 'API key'),
    input,
    el('button', { type: 'submit' }, 'Log in'),
    error,
  ]);
  return [
    el('h2', {}, 'Log in'),
    el('p', {}, 'Paste an API key: the admin key sees every tenant, a tenant key its own webhooks.'),
    el('p', { class: 'hint' }, 'The key stays in this browser tab and is sent only to this server.'),
    form,
  ];
}

const webhookColumns = () => [
  ...tenantColumn(),
  {
    title: 'Webhook',
    cell: (w) => [
      el('div', { class: 'desc' }, link(`#/webhooks/${enc(w.id)}`, w.description || 'Manage')),
      el('div', { class: 'url' }, w.url),
      el('code', {}, w.id),
    ],
  },
  { title: 'Enabled', cell: (w) => (w.enabled ? 'yes' : el('span', { class: 'badge failed' }, 'disabled')) },
  { title: 'Breaker', cell: ({ health: h }) => badge(`breaker-${h.breaker_state}`, h.breaker_state) },
  {
    title: 'Success (24 h)',
    cell: ({ health: h }) => [
      percent(h.success_rate_24h),
      el('div', { class: 'hint' }, `${h.succeeded_attempts_24h} ok / ${h.failed_attempts_24h} failed`),
    ],
  },
  { title: 'Consecutive failures', cell: ({ health: h }) => String(h.consecutive_failures) },
  {
    title: 'Queue',
    cell: ({ health: h }) => `${h.pending} pending (${h.due} due), ${h.in_flight} in flight`,
  },
  {
    // The adaptive in-flight limit: it rises while the receiver keeps up, falls when it slows or fails.
    title: 'Concurrency',
    cell: ({ health: h }) => [
      `${h.concurrency_limit} of ${h.max_concurrency}`,
      el('div', { class: 'hint' }, h.latency_floor_ms === null ? '' : `floor ${h.latency_floor_ms} ms`),
    ],
  },
  { title: 'Last success', cell: ({ health: h }) => time(h.last_success_at) },
  {
    title: '',
    cell: (w) => [
      link(`#/deliveries${query({ webhook_id: w.id })}`, 'Deliveries'),
      ' · ',
      link(`#/dlq${query({ webhook_id: w.id })}`, `DLQ (${w.health.dead_letters})`),
    ],
  },
];

async function webhooksPage() {
  const list = pagedTable(
    webhookColumns(),
    (cursor) => api('GET', `console/api/webhook-health${query({ limit: 100, cursor })}`),
    { emptyText: 'No webhooks yet.', onError: showError },
  );
  await list.load();
  return [
    el('h2', {}, 'Webhooks'),
    el(
      'p',
      {},
      link('#/webhooks/new', 'Register a webhook'),
      ' · ',
      el('span', { class: 'hint' }, 'open one to edit, disable, rotate its secret or send a test event'),
    ),
    list.node,
  ];
}

function deliveryFilterForm(params, webhooks) {
  const select = (name, options) =>
    el('select', { name }, [
      options.map(([v, text]) => el('option', { value: v, selected: v === (params.get(name) ?? '') }, text)),
    ]);
  const when = (name) => el('input', { type: 'datetime-local', name, value: toLocalInput(params.get(name)) });
  const form = el('form', { class: 'filters', id: 'delivery-filters' }, [
    el(
      'label',
      {},
      'Webhook ',
      select('webhook_id', [['', 'any webhook'], ...webhooks.map((w) => [w.id, w.description || w.url])]),
    ),
    el('label', {}, 'Status ', select('status', [['', 'any status'], ...STATUSES.map((s) => [s, s])])),
    el('label', {}, 'From ', when('from')),
    el('label', {}, 'To ', when('to')),
    el('button', { type: 'submit' }, 'Search'),
  ]);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const hash = `#/deliveries${query({
      webhook_id: data.get('webhook_id'),
      status: data.get('status'),
      from: fromLocalInput(data.get('from')),
      to: fromLocalInput(data.get('to')),
    })}`;
    if (hash === location.hash) render();
    else location.hash = hash;
  });
  return form;
}

async function deliveriesPage(params) {
  const { webhooks, nameOf } = await webhookNames();
  const filter = Object.fromEntries(['webhook_id', 'status', 'from', 'to'].map((k) => [k, params.get(k)]));
  const columns = [
    ...tenantColumn(),
    { title: 'Delivery', cell: (d) => deliveryLink(d.id) },
    { title: 'Event type', cell: (d) => d.event_type },
    { title: 'Webhook', cell: (d) => nameOf(d.webhook_id) },
    { title: 'Status', cell: (d) => badge(d.status) },
    { title: 'Attempts', cell: (d) => String(d.attempt_count ?? d.attempts) },
    { title: 'Last result', cell: lastResult },
    { title: 'Created', cell: (d) => time(d.created_at) },
  ];
  const list = pagedTable(
    columns,
    (cursor) => api('GET', `deliveries${query({ ...filter, limit: 50, cursor })}`),
    {
      emptyText: 'No deliveries match.',
      onError: showError,
    },
  );
  await list.load();
  return [el('h2', {}, 'Deliveries'), deliveryFilterForm(params, webhooks), list.node];
}

function attemptsTable(attempts) {
  if (attempts.length === 0) return el('p', { class: 'empty' }, 'No attempts yet.');
  const rows = attempts.map((a) => [
    String(a.attempt),
    time(a.started_at),
    `${a.duration_ms} ms`,
    a.status_code ? el('code', {}, String(a.status_code)) : '—',
    el('span', { class: 'error-text' }, a.error ?? ''),
    a.response_excerpt ? el('pre', { class: 'excerpt' }, a.response_excerpt) : '',
  ]);
  const titles = ['#', 'Started', 'Duration', 'Status', 'Error', 'Response (excerpt)'];
  return table(titles, rows, { id: 'attempts' });
}

async function deliveryPage(id) {
  const d = await api('GET', `deliveries/${enc(id)}`);
  const event = await api('GET', `events/${enc(d.event_id)}`).catch(() => null);
  const attempts = Array.isArray(d.attempts) ? d.attempts : [];
  const field = (label, value) => [el('dt', {}, label), el('dd', {}, value)];
  const replay = actionButton('Replay', { id: 'replay' }, async () => {
    await api('POST', `deliveries/${enc(id)}/replay`);
    flash('Replay queued: the event will be delivered again with the same delivery id.');
    render({ keepFlash: true });
  });
  // While the delivery is still moving, refresh this page until it settles.
  if (d.status === 'pending' || d.status === 'in_flight') refreshSoon();
  return [
    el('h2', {}, 'Delivery ', el('code', {}, d.id), ' ', badge(d.status)),
    el('dl', { class: 'fields' }, [
      field('Event', [d.event_type, ' ', el('code', {}, d.event_id)]),
      field('Webhook', link(`#/deliveries${query({ webhook_id: d.webhook_id })}`, d.webhook_id)),
      session?.kind === 'admin' ? field('Tenant', el('code', {}, d.tenant_id)) : [],
      field('Attempts (this cycle)', String(d.attempt_count ?? attempts.length)),
      field('Next attempt', d.status === 'pending' ? time(d.next_attempt_at) : '—'),
      field('Last status code', d.last_status_code ? el('code', {}, String(d.last_status_code)) : '—'),
      field('Last failed attempt', el('span', { class: 'error-text' }, d.last_error ?? '—')),
      field('Created', time(d.created_at)),
      field('Completed', time(d.completed_at)),
    ]),
    el('p', {}, replay, ' ', el('span', { class: 'hint' }, 'Sends the event to this webhook again.')),
    el('h3', {}, 'Attempts'),
    attemptsTable(attempts),
    el('h3', {}, 'Event'),
    event ? eventFields(event, field) : el('p', { class: 'hint' }, 'The event is not available.'),
    el('h3', {}, 'Event payload'),
    eventPayload(event),
  ];
}

/** The payload as JSON; a payload removed by retention says so (its `null` is not the producer's). */
function eventPayload(event) {
  if (!event) return el('p', { class: 'hint' }, 'The event is not available.');
  if (event.payload_removed)
    return el(
      'p',
      { class: 'hint', id: 'payload-removed' },
      'The payload was removed by retention (RETENTION_PAYLOAD_DAYS); it cannot be sent again.',
    );
  return el('pre', { class: 'payload', id: 'payload' }, JSON.stringify(event.payload, null, 2));
}

// What the producer said about the event besides its payload (docs/event-types.md): the catalog
// version, its own name (source) and its metadata, each as text.
function eventFields(event, field) {
  const metadata = Object.entries(event.metadata ?? {});
  return el('dl', { class: 'fields', id: 'event-fields' }, [
    field('Type', el('code', {}, event.type)),
    field('Version', event.version === null ? '— (not in the catalog)' : String(event.version)),
    field('Source', event.source ?? '—'),
    field('Time', time(event.timestamp)),
    field(
      'Metadata',
      metadata.length === 0
        ? '—'
        : el(
            'table',
            { id: 'event-metadata' },
            el(
              'tbody',
              {},
              metadata.map(([k, v]) => el('tr', {}, [el('th', {}, k), el('td', {}, v)])),
            ),
          ),
    ),
  ]);
}

async function dlqPage(params) {
  const webhookId = params.get('webhook_id') ?? undefined;
  const { nameOf } = await webhookNames();
  const retry = (r) =>
    actionButton('Retry', { class: 'retry', 'data-delivery': r.delivery_id }, async (button) => {
      await api('POST', `dlq/${enc(r.delivery_id)}/retry`);
      button.replaceWith(el('span', { class: 'queued' }, 'queued again: ', deliveryLink(r.delivery_id)));
    });
  const columns = [
    ...tenantColumn(),
    { title: 'Delivery', cell: (r) => deliveryLink(r.delivery_id) },
    { title: 'Event type', cell: (r) => r.event_type },
    { title: 'Webhook', cell: (r) => nameOf(r.webhook_id) },
    { title: 'Attempts', cell: (r) => String(r.attempts) },
    { title: 'Last error', cell: (r) => el('span', { class: 'error-text' }, r.last_error ?? '') },
    { title: 'Dead since', cell: (r) => time(r.dead_at) },
    { title: '', cell: retry },
  ];
  const list = pagedTable(
    columns,
    (cursor) => api('GET', `dlq${query({ webhook_id: webhookId, limit: 100, cursor })}`),
    {
      emptyText: 'The dead-letter queue is empty.',
      onError: showError,
    },
  );
  await list.load();
  const bulk = actionButton(
    webhookId ? 'Retry all of this webhook' : 'Retry all',
    { id: 'retry-all' },
    async () => {
      const result = await api('POST', 'dlq/retry', webhookId ? { webhook_id: webhookId } : {});
      flash(`Queued ${result.requeued} dead deliveries again.`);
      render({ keepFlash: true });
    },
  );
  const scope = webhookId
    ? ['Webhook ', nameOf(webhookId), ' · ', link('#/dlq', 'all webhooks')]
    : 'All webhooks';
  return [el('h2', {}, 'Dead-letter queue'), el('p', {}, scope), el('p', {}, bulk), list.node];
}

// ---- Routing ---------------------------------------------------------------------------------

function showError(e) {
  if (e instanceof ApiError && e.status === 401) return logout('Your API key was refused; log in again.');
  flash(e instanceof Error ? e.message : String(e), 'error');
}

function logout(message) {
  clearKey();
  session = null;
  loginMessage = message;
  if (location.hash !== '#/login')
    location.hash = '#/login'; // the hashchange renders
  else render();
}

let refreshTimer;
function refreshSoon() {
  clearTimeout(refreshTimer);
  const hash = location.hash;
  refreshTimer = setTimeout(() => location.hash === hash && render({ keepFlash: true }), 1000);
}

function paint(seq, nodes) {
  if (seq !== renderSeq) return; // a newer render has started; drop this one
  document.getElementById('nav').hidden = !session;
  document.getElementById('who').textContent =
    session?.kind === 'admin' ? 'admin (all tenants)' : session ? `tenant ${session.tenant_id}` : '';
  // Pages return nested arrays of nodes, with null for parts they leave out.
  main.replaceChildren(...[nodes].flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

const manage = webhookPages({ session: () => session, render, actionButton, showError });

async function pageFor(path, params) {
  if (path === '/webhooks/new') return manage.newWebhookPage();
  const webhook = /^\/webhooks\/([^/]+?)(\/edit)?$/.exec(path);
  if (webhook)
    return webhook[2]
      ? manage.editWebhookPage(decodeURIComponent(webhook[1]))
      : manage.webhookPage(decodeURIComponent(webhook[1]));
  const delivery = /^\/deliveries\/([^/]+)$/.exec(path);
  if (delivery) return deliveryPage(decodeURIComponent(delivery[1]));
  if (path === '/deliveries') return deliveriesPage(params);
  if (path === '/dlq') return dlqPage(params);
  if (path === '/quotas') return quotasPage({ session: () => session }, params);
  if (path === '/webhooks' || path === '/login' || path === '') return webhooksPage();
  return [el('h2', {}, 'Not found'), el('p', {}, link('#/webhooks', 'Back to the webhooks'))];
}

async function render({ keepFlash = false } = {}) {
  const seq = ++renderSeq;
  clearTimeout(refreshTimer);
  if (!keepFlash) flash('');
  const [path, search] = location.hash.slice(1).split('?');
  if (!getKey()) return paint(seq, loginPage(loginMessage));
  try {
    session ??= await api('GET', 'console/api/session');
    paint(seq, await pageFor(path ?? '', new URLSearchParams(search ?? '')));
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) return logout('Your API key was refused; log in again.');
    paint(seq, [el('h2', {}, 'Something went wrong'), el('p', { class: 'error', role: 'alert' }, e.message)]);
  }
}

document.getElementById('logout').addEventListener('click', () => logout());
window.addEventListener('hashchange', () => render());
render();
