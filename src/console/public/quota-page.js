// The console's Quotas page: tenants by how close they are to their quotas (events per second,
// deliveries in flight, DLQ size), nearest first, from GET /console/api/tenant-usage. Metrics only
// count such tenants (no tenant label); this page names them. Every value goes through el() (text).
import { api, query } from './api.js';
import { el, link, table } from './dom.js';

const QUOTAS = [
  ['events_per_sec', 'Events / s (busiest second, 1 min)'],
  ['concurrent_deliveries', 'Deliveries in flight'],
  ['dlq_size', 'Dead letters'],
];

/** At 80 % a quota is near (warn), at 100 % reached (over): the thresholds of the metrics. */
const level = (percent) => (percent >= 100 ? 'over' : percent >= 80 ? 'near' : 'ok');

function useCell(q) {
  return el('span', { class: `quota-use ${level(q.percent)}` }, [
    `${q.used} of ${q.limit}`,
    el('div', { class: 'hint' }, `${q.percent.toFixed(1)} %`),
  ]);
}

/** ui: {session: () => session}. */
export async function quotasPage(ui, params) {
  const limit = params.get('limit') ?? '20';
  const { data } = await api('GET', `console/api/tenant-usage${query({ limit })}`);
  const admin = ui.session()?.kind === 'admin';
  const titles = ['Tenant', 'Nearest limit', ...QUOTAS.map(([, title]) => title)];
  const rows = data.map((t) => [
    [el('div', { class: 'desc' }, t.name), el('code', {}, t.tenant_id)],
    el('span', { class: `quota-use ${level(t.peak_percent)}` }, `${t.peak_percent.toFixed(1)} %`),
    ...QUOTAS.map(([key]) => useCell(t.quotas[key])),
  ]);
  return [
    el('h2', {}, 'Quota usage'),
    el(
      'p',
      { class: 'hint' },
      admin
        ? `The ${data.length} tenants nearest their limits. Highlighted: 80 % and more, 100 % and more. `
        : 'Your quotas and how much of each is in use. ',
      'Events count the busiest second of the last minute; the DLQ quota is flagged, not enforced.',
    ),
    data.length === 0
      ? el('p', { class: 'empty' }, 'No tenants yet.')
      : table(titles, rows, { id: 'quotas' }),
    admin && data.length >= Number(limit)
      ? el(
          'p',
          {},
          link(`#/quotas${query({ limit: Math.min(100, Number(limit) * 5) })}`, 'Show more tenants'),
        )
      : null,
  ];
}
