/**
 * The one place a webhook URL is judged at registration (POST and PATCH /webhooks). Async so that a
 * check needing DNS (the SSRF guard) can join here without touching the routes.
 */
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { checkWebhookUrl } from '../security/ssrf.js';

export const WEBHOOK_URL_MAX_LENGTH = 2048;

/** Why `raw` is not an acceptable webhook URL, or undefined. Syntax only. */
export function webhookUrlProblem(raw: string): string | undefined {
  if (raw.length > WEBHOOK_URL_MAX_LENGTH) return `must be at most ${WEBHOOK_URL_MAX_LENGTH} characters`;
  // WHATWG parsing quietly strips whitespace and control characters and accepts `http:host`; we
  // want the stored text to be exactly what is requested, so such input is refused, not repaired.
  if (!/^https?:\/\//i.test(raw)) return 'must be an absolute http:// or https:// URL';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\s\x00-\x1f\x7f]/.test(raw)) return 'must not contain whitespace or control characters';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must use http or https';
  if (!url.hostname) return 'must name a host';
  if (url.username || url.password) return 'must not contain a user name or password';
  return undefined;
}

/**
 * Throws a 400 naming `path` if the URL may not be registered: its syntax, then the SSRF check
 * (scheme, REQUIRE_HTTPS, and every address the host is or resolves to; SSRF_ALLOW_CIDRS opens ranges).
 */
export async function validateWebhookUrl(
  raw: string,
  config: Pick<Config, 'SSRF_ALLOW_CIDRS' | 'REQUIRE_HTTPS'>,
  path = 'url',
): Promise<void> {
  const problem = webhookUrlProblem(raw);
  if (problem) throw AppError.validation('url is not valid', [{ path, message: problem }]);
  const check = await checkWebhookUrl(raw, {
    allowCidrs: config.SSRF_ALLOW_CIDRS,
    requireHttps: config.REQUIRE_HTTPS,
  });
  if (!check.ok) throw AppError.validation('url is not allowed', [{ path, message: check.reason }]);
}
