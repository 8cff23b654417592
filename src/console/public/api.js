// The console's only way to talk to the server: fetch with the pasted key as a Bearer header.
// No cookie is ever set, so a page on another site cannot make the browser send the key (no CSRF).

const KEY_STORAGE = 'postbox.apiKey';
// The API lives beside /console/ (this also works behind a path prefix).
const API_BASE = new URL('../', document.baseURI);

export const getKey = () => sessionStorage.getItem(KEY_STORAGE);
export const setKey = (key) => sessionStorage.setItem(KEY_STORAGE, key);
export const clearKey = () => sessionStorage.removeItem(KEY_STORAGE);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the JSON API; resolves to the parsed body, or throws ApiError with the server's message. */
export async function api(method, path, body) {
  const headers = { authorization: `Bearer ${getKey() ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(new URL(path, API_BASE), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the Postbox server.');
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.ok) return json;
  const err = json?.error;
  const details = (err?.details ?? []).map((d) => `${d.path}: ${d.message}`).join('; ');
  const message = (err?.message ?? `HTTP ${res.status}`) + (details ? ` (${details})` : '');
  throw new ApiError(res.status, err?.code ?? `http_${res.status}`, message);
}

/** "?a=1&b=2" from the given values, leaving out empty ones; "" when none is left. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
