// The console's webhook management pages: register, edit, enable/disable, rotate the secret (shown
// once), send a test event, and a chart of attempts per hour. Every value goes through el() (text).
import { api, query } from './api.js';
import { badge, el, flash, link, time } from './dom.js';
import { attemptsChart } from './chart.js';

const enc = encodeURIComponent;
/** A secret to show once, on the next render of that webhook's page (then forgotten). */
let secretToShow = null;

/** ui: {session: () => session, render, actionButton, showError} from console.js. */
export function webhookPages(ui) {
  const numberField = (name, label, value, hint) =>
    el(
      'label',
      {},
      `${label} `,
      el('input', { type: 'number', name, value: value ?? '', min: 0 }),
      hint ? el('span', { class: 'hint' }, ` ${hint}`) : null,
    );

  function webhookForm(w) {
    const creating = !w;
    const rp = w?.retry_policy ?? {};
    const error = el('p', { class: 'error', id: 'form-error', role: 'alert' });
    const form = el('form', { id: 'webhook-form', class: 'stacked' }, [
      creating && ui.session()?.kind === 'admin'
        ? el('label', {}, 'Tenant id ', el('input', { name: 'tenant_id', required: true, size: 40 }))
        : null,
      el(
        'label',
        {},
        'URL ',
        el('input', { name: 'url', type: 'url', required: true, size: 60, value: w?.url ?? '' }),
      ),
      el(
        'label',
        {},
        'Description ',
        el('input', { name: 'description', size: 60, value: w?.description ?? '' }),
      ),
      el(
        'label',
        {},
        'Event types ',
        el('input', { name: 'event_types', size: 60, value: (w?.event_types ?? []).join(', ') }),
        el('span', { class: 'hint' }, ' comma-separated; order.* for a prefix; empty: every type'),
      ),
      el('fieldset', {}, [
        el('legend', {}, 'Retry policy'),
        numberField('max_attempts', 'Max attempts', rp.max_attempts, '1–50'),
        numberField('initial_delay_ms', 'Initial delay (ms)', rp.initial_delay_ms),
        numberField('max_delay_ms', 'Max delay (ms)', rp.max_delay_ms),
      ]),
      el('fieldset', {}, [
        el('legend', {}, 'Limits'),
        numberField('timeout_ms', 'Timeout (ms)', w?.timeout_ms, '1000–30000'),
        numberField('max_concurrency', 'Max concurrent deliveries', w?.max_concurrency, '1–100'),
      ]),
      el('button', { type: 'submit' }, creating ? 'Register webhook' : 'Save changes'),
      ' ',
      creating ? link('#/webhooks', 'Cancel') : link(`#/webhooks/${enc(w.id)}`, 'Cancel'),
      error,
    ]);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const text = (k) => String(data.get(k) ?? '').trim();
      const num = (k) => (text(k) === '' ? undefined : Number(text(k)));
      const types = text('event_types')
        .split(/[\s,]+/)
        .filter(Boolean);
      const retry = Object.fromEntries(
        ['max_attempts', 'initial_delay_ms', 'max_delay_ms']
          .map((k) => [k, num(k)])
          .filter(([, v]) => v !== undefined),
      );
      const body = {
        url: text('url'),
        description: text('description') || (creating ? undefined : null),
        event_types: types.length > 0 ? types : creating ? undefined : ['*'],
        retry_policy: Object.keys(retry).length > 0 ? retry : undefined,
        timeout_ms: num('timeout_ms'),
        max_concurrency: num('max_concurrency'),
        tenant_id: creating && data.has('tenant_id') ? text('tenant_id') : undefined,
      };
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      error.textContent = '';
      try {
        const saved = creating
          ? await api('POST', 'webhooks', body)
          : await api('PATCH', `webhooks/${enc(w.id)}`, body);
        if (creating) secretToShow = { id: saved.id, secret: saved.secret, why: 'registered' };
        flash(creating ? 'Webhook registered.' : 'Changes saved.');
        location.hash = `#/webhooks/${enc(saved.id)}`;
      } catch (e) {
        button.disabled = false;
        if (e.status === 401) return ui.showError(e);
        error.textContent = e.message;
      }
    });
    return form;
  }

  function secretBox(w) {
    if (secretToShow?.id !== w.id) return null;
    const { secret, why } = secretToShow;
    secretToShow = null;
    return el('div', { class: 'secret-once', id: 'secret-once', role: 'status' }, [
      el(
        'p',
        {},
        why === 'rotated' ? 'New signing secret' : 'Signing secret',
        ' — shown only this once, copy it now:',
      ),
      el('code', { id: 'secret' }, secret),
    ]);
  }

  function testForm(w) {
    const result = el('div', { id: 'test-result', class: 'test-result', hidden: true });
    const form = el('form', { id: 'test-form', class: 'filters' }, [
      el('label', {}, 'Type ', el('input', { name: 'type', placeholder: 'default sample type', size: 28 })),
      el(
        'label',
        {},
        'Payload (JSON) ',
        el('input', { name: 'payload', placeholder: 'default sample payload', size: 40 }),
      ),
      el('button', { type: 'submit' }, 'Send test event'),
    ]);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const body = {};
      const type = String(data.get('type') ?? '').trim();
      const payload = String(data.get('payload') ?? '').trim();
      if (type) body.type = type;
      result.hidden = false;
      if (payload) {
        try {
          body.payload = JSON.parse(payload);
        } catch {
          result.replaceChildren(el('p', { class: 'error' }, 'The payload is not valid JSON.'));
          return;
        }
      }
      const button = form.querySelector('button');
      button.disabled = true;
      result.replaceChildren(el('p', { class: 'hint' }, 'Sending…'));
      try {
        const r = await api('POST', `webhooks/${enc(w.id)}/test`, body);
        const ok = r.status_code !== null && r.status_code >= 200 && r.status_code < 300;
        result.replaceChildren(
          el(
            'p',
            {},
            badge(ok ? 'succeeded' : 'failed', ok ? 'delivered' : 'failed'),
            ' ',
            r.status_code === null ? 'no answer' : el('code', { class: 'status' }, String(r.status_code)),
            ` in ${r.duration_ms} ms`,
          ),
          r.error ? el('p', { class: 'error-text test-error' }, r.error) : null,
          r.response_excerpt ? el('pre', { class: 'excerpt' }, r.response_excerpt) : null,
        );
      } catch (e) {
        if (e.status === 401) return ui.showError(e);
        result.replaceChildren(el('p', { class: 'error' }, e.message));
      } finally {
        button.disabled = false;
      }
    });
    return [form, result];
  }

  async function webhookPage(id) {
    const [w, stats] = await Promise.all([
      api('GET', `webhooks/${enc(id)}`),
      api('GET', `console/api/webhooks/${enc(id)}/stats${query({ hours: 24 })}`),
    ]);
    const field = (label, value) => [el('dt', {}, label), el('dd', {}, value)];
    const toggle = ui.actionButton(w.enabled ? 'Disable' : 'Enable', { id: 'toggle-enabled' }, async () => {
      await api('PATCH', `webhooks/${enc(id)}`, { enabled: !w.enabled });
      flash(
        w.enabled ? 'Webhook disabled: its deliveries wait until it is enabled again.' : 'Webhook enabled.',
      );
      ui.render({ keepFlash: true });
    });
    const rotate = ui.actionButton('Rotate secret', { id: 'rotate-secret' }, async () => {
      const { secret } = await api('POST', `webhooks/${enc(id)}/rotate-secret`, {});
      secretToShow = { id, secret, why: 'rotated' };
      flash('Secret rotated: the old one keeps signing beside the new one for 24 hours.');
      ui.render({ keepFlash: true });
    });
    const rp = w.retry_policy;
    return [
      el('h2', {}, 'Webhook ', w.enabled ? badge('succeeded', 'enabled') : badge('failed', 'disabled')),
      secretBox(w),
      el('dl', { class: 'fields', id: 'webhook-fields' }, [
        field('URL', el('span', { class: 'url', id: 'webhook-url' }, w.url)),
        field('Description', w.description ?? '—'),
        field('Id', el('code', {}, w.id)),
        ui.session()?.kind === 'admin' ? field('Tenant', el('code', {}, w.tenant_id)) : [],
        field('Event types', el('span', { id: 'webhook-event-types' }, w.event_types.join(', '))),
        field(
          'Retry policy',
          `${rp.max_attempts} attempts, ${rp.initial_delay_ms} ms doubling up to ${rp.max_delay_ms} ms`,
        ),
        field('Limits', `timeout ${w.timeout_ms} ms, at most ${w.max_concurrency} at once`),
        w.disabled_reason ? field('Disabled because', w.disabled_reason) : [],
        field('Created', time(w.created_at)),
      ]),
      el('p', { class: 'actions' }, [
        link(`#/webhooks/${enc(id)}/edit`, 'Edit'),
        ' ',
        toggle,
        ' ',
        rotate,
        ' · ',
        link(`#/deliveries${query({ webhook_id: id })}`, 'Deliveries'),
        ' · ',
        link(`#/dlq${query({ webhook_id: id })}`, 'Dead letters'),
      ]),
      el('h3', {}, 'Send a test event'),
      el(
        'p',
        { class: 'hint' },
        'Signed and sent like a real delivery; it does not count against the breaker, quotas or health.',
      ),
      testForm(w),
      el('h3', {}, 'Attempts per hour, last 24 hours'),
      el(
        'p',
        { class: 'hint' },
        el('span', { class: 'legend ok' }, 'succeeded'),
        ' ',
        el('span', { class: 'legend failed' }, 'failed'),
      ),
      attemptsChart(stats.buckets),
    ];
  }

  async function editWebhookPage(id) {
    const w = await api('GET', `webhooks/${enc(id)}`);
    return [el('h2', {}, 'Edit webhook'), webhookForm(w)];
  }

  function newWebhookPage() {
    return [el('h2', {}, 'Register a webhook'), webhookForm(null)];
  }

  return { webhookPage, editWebhookPage, newWebhookPage };
}
