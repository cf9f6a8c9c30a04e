import { SEVERITIES, type Severity } from '../domain/alert-rules.js';
import { VERSION } from '../version.js';
import { isAlertEventData } from './cloudevents.js';
import { sign } from './signature.js';
import { originOf, post, type DeliveryOutcome, type HttpLimits, type Sink } from './sink.js';
import type { CloudEvent } from '../domain/cloud-event.js';

export interface WebhookFilter {
  /** Alert events below this severity are not sent (device events have none and always pass). */
  readonly minSeverity: Severity;
  /** Event types sent; an entry ending in `*` matches a prefix (`vigil.alert.*`). Empty: every type. */
  readonly types: readonly string[];
}

/** `critical` is the highest: a severity passes when it is at least as high as `min`. */
export function atLeast(severity: string, min: Severity): boolean {
  const rank = SEVERITIES.indexOf(severity as Severity);
  return rank !== -1 && rank <= SEVERITIES.indexOf(min);
}

export function typeMatches(type: string, patterns: readonly string[]): boolean {
  return patterns.length === 0 || patterns.some((p) => (p.endsWith('*') ? type.startsWith(p.slice(0, -1)) : type === p));
}

/** A webhook receiving CloudEvents in structured mode, signed (Standard Webhooks headers) when a key is set. */
export class WebhookSink implements Sink {
  readonly target: string;

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly key: Buffer | null,
    private readonly filter: WebhookFilter,
    private readonly limits: HttpLimits,
    private readonly nowS: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    this.target = originOf(url);
  }

  accepts(event: CloudEvent): boolean {
    if (!typeMatches(event.type, this.filter.types)) return false;
    return !isAlertEventData(event.data) || atLeast(event.data.severity, this.filter.minSeverity);
  }

  deliver(event: CloudEvent): Promise<DeliveryOutcome> {
    const body = JSON.stringify(event);
    const headers: Record<string, string> = {
      'content-type': 'application/cloudevents+json; charset=utf-8',
      'user-agent': `Vigil/${VERSION}`,
      'webhook-id': event.id,
    };
    if (this.key !== null) {
      // Signed at each attempt: the timestamp is the attempt's, so receivers' replay windows hold.
      const timestamp = this.nowS();
      headers['webhook-timestamp'] = String(timestamp);
      headers['webhook-signature'] = sign(this.key, event.id, timestamp, body);
    }
    return post(this.url, headers, body, this.limits);
  }
}
