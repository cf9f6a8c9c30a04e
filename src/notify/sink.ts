import type { CloudEvent } from '../domain/cloud-event.js';

/** One delivery attempt's result; `retry: false` means retrying cannot help (the row goes dead now). */
export type DeliveryOutcome = { readonly ok: true } | { readonly ok: false; readonly error: string; readonly retry: boolean };

/** Where notifications go: each webhook URL and each Alertmanager is one sink with its own outbox rows. */
export interface Sink {
  /** `webhook-1`, `alertmanager-1`: the `sink` label and outbox column (never the URL, which may hold a token). */
  readonly name: string;
  /** For logs: scheme, host and port only. */
  readonly target: string;
  /** Whether this sink wants the event at all (its filters): decided once, when the outbox row would be written. */
  accepts(event: CloudEvent): boolean;
  deliver(event: CloudEvent): Promise<DeliveryOutcome>;
}

export interface HttpLimits {
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
}

/** A URL as logs may show it: origin only (paths and queries of webhook URLs often carry tokens). */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '[unparseable url]';
  }
}

/**
 * One POST, bounded: a timeout on the whole exchange, no redirects followed (a signed body is not
 * sent on to wherever a 3xx points), the answer's body discarded unread. Anything but 2xx is a
 * failure; the error names the status or the network error, never the URL.
 */
export async function post(url: string, headers: Record<string, string>, body: string, limits: HttpLimits): Promise<DeliveryOutcome> {
  if (Buffer.byteLength(body) > limits.maxBodyBytes) return { ok: false, error: `body over NOTIFY_MAX_BODY_BYTES (${limits.maxBodyBytes})`, retry: false };
  try {
    const response = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(limits.timeoutMs) });
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { ok: true };
    return { ok: false, error: `HTTP ${response.status}`, retry: true };
  } catch (error) {
    return { ok: false, error: networkError(error, limits.timeoutMs), retry: true };
  }
}

function networkError(error: unknown, timeoutMs: number): string {
  if (!(error instanceof Error)) return 'request failed';
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  const cause = error.cause as { code?: unknown } | undefined;
  return typeof cause?.code === 'string' ? cause.code : error.name;
}
