import { createHash } from 'node:crypto';
import type { CloudEvent } from '../domain/cloud-event.js';

/** One delivery attempt's result; `retry: false` means retrying cannot help (the row goes dead now). */
export type DeliveryOutcome = { readonly ok: true } | { readonly ok: false; readonly error: string; readonly retry: boolean };

/** Where notifications go: each webhook URL and each Alertmanager is one sink with its own outbox rows. */
export interface Sink {
  /** `webhook-3f0c9a52`, `alertmanager-…` (sinkId): the `sink` label and outbox column, stable for its URL (never the URL, which may hold a token). */
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

export type SinkKind = 'webhook' | 'alertmanager';

/**
 * A sink's identity: its kind and the first 8 hex digits of SHA-256 of its URL (normalised by the
 * URL parser: `HTTP://Host:80/x` and `http://host/x` are one). Stable for the URL whatever its place
 * in ALERT_WEBHOOK_URL / ALERTMANAGER_URL, and different for another URL — so an outbox row written
 * for one receiver is only ever delivered to that receiver, whatever the lists become. The digest
 * names the URL without showing it (paths and queries often hold tokens); it is the `sink` label of
 * the metrics, the outbox column and the REST name.
 */
export function sinkId(kind: SinkKind, url: string): string {
  // An Alertmanager is its API's base: `http://am:9093/` and `http://am:9093` post to the same endpoint.
  let normal = kind === 'alertmanager' ? url.trim().replace(/\/+$/, '') : url.trim();
  try {
    normal = new URL(normal).href;
  } catch {
    // The configuration refuses unparseable URLs; kept as written if one ever reaches here.
  }
  return `${kind}-${createHash('sha256').update(`${kind} ${normal}`).digest('hex').slice(0, 8)}`;
}

/** Names of sinks by their place in the lists (`webhook-1`, `alertmanager-2`), as hubs before sinkId wrote them. */
export const LEGACY_SINK_NAME = /^(webhook|alertmanager)-([1-9][0-9]{0,3})$/;
