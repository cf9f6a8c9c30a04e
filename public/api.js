// REST calls to this hub. The API key (when the hub needs one) is kept in sessionStorage only:
// gone when the tab closes. A 401 asks for a key again through onUnauthorized.
let key = sessionStorage.getItem('vigil-key') || '';
let onUnauthorized = () => {};

export const hasKey = () => key !== '';
export function setKey(value) {
  key = value;
  sessionStorage.setItem('vigil-key', key);
}
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? body?.detail?.[0]?.msg ?? (typeof body?.detail === 'string' ? body.detail : `HTTP ${status}`));
    this.status = status;
    this.body = body;
  }
}

/** fetch with the key; JSON bodies as application/json (the hub refuses other types for JSON). */
export async function api(path, init = {}) {
  const headers = { ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers || {}), ...(key ? { 'x-api-key': key } : {}) };
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) {
    onUnauthorized('The hub needs a valid API key.');
    throw new ApiError(401, await res.json().catch(() => null));
  }
  return res;
}

/** GET or send JSON; a non-2xx answer throws an ApiError with the hub's message. */
export async function json(path, { method = 'GET', body } = {}) {
  const res = await api(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const enc = encodeURIComponent;

/**
 * A short-lived token for the WebSocket (never the key itself): POST /ws-token's `{ token, expires_at }`;
 * null when the hub needs no key (none stored, or its 409). Any other failure throws (an ApiError with
 * the status, 401 for a refused key), so the live layer retries rather than connecting without one.
 */
export async function wsToken() {
  if (!key) return null;
  const res = await api('/ws-token', { method: 'POST' });
  if (res.status === 409) return null;
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  return res.json();
}
