import { VERSION } from '../version.js';
import { isAlertEventData } from './cloudevents.js';
import { originOf, post, type DeliveryOutcome, type HttpLimits, type Sink } from './sink.js';
import type { AlertEventData, CloudEvent } from '../domain/cloud-event.js';

/** Alertmanager's API v2 `postableAlert` (api/v2/openapi.yaml): labels identify the alert, the rest describes it. */
export interface PostableAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly startsAt: string;
  readonly endsAt?: string;
  readonly generatorURL?: string;
}

/**
 * Labels are the alert's identity in Alertmanager (its fingerprint, what silences and routes match):
 * alertname (the rule or anomaly type), device_id, severity and device_type when known. Everything
 * else goes into annotations. A cleared alert carries `endsAt`; an active one none, so Alertmanager
 * keeps it until `resolve_timeout` passes without a re-send (ALERTMANAGER_RESEND_S is well below).
 */
export function toPostableAlert(data: AlertEventData): PostableAlert {
  const labels: Record<string, string> = { alertname: data.anomaly_type, device_id: data.device_id, severity: data.severity };
  if (data.device_type !== null && data.device_type !== '') labels.device_type = data.device_type;
  const annotations: Record<string, string> = { summary: summaryOf(data), alert_id: data.alert_id };
  const fields = data.data;
  for (const key of ['value', 'threshold', 'clear', 'metric', 'cleared_with'] as const) {
    const value = fields[key];
    if (typeof value === 'number' || typeof value === 'string') annotations[key] = String(value);
  }
  if (data.acknowledged_by !== null) annotations.acknowledged_by = data.acknowledged_by;
  if (data.dashboard_url !== null) annotations.dashboard = data.dashboard_url;
  return {
    labels,
    annotations,
    startsAt: data.raised_at!,
    ...(data.state === 'cleared' && data.cleared_at !== null ? { endsAt: data.cleared_at } : {}),
    ...(data.dashboard_url !== null ? { generatorURL: data.dashboard_url } : {}),
  };
}

/**
 * What one event posts. An escalation (`vigil.alert.updated` whose `data.escalated_from` is another
 * severity) changes the `severity` label, so Alertmanager sees a new alert (its fingerprint is the
 * label set); the label set it had until then is posted too, with `endsAt` at the escalation, so it
 * resolves now instead of lingering until resolve_timeout or being reported resolved later. Severity
 * stays a label: routes, silences and inhibitions commonly match it.
 */
export function postableAlertsFor(type: string, data: AlertEventData): PostableAlert[] {
  const alert = toPostableAlert(data);
  const from = data.data.escalated_from;
  if (type !== 'vigil.alert.updated' || typeof from !== 'string' || from === data.severity) return [alert];
  const at = typeof data.data.escalated_at === 'string' ? data.data.escalated_at : (data.updated_at ?? new Date().toISOString());
  const ended: PostableAlert = { ...alert, labels: { ...alert.labels, severity: from }, annotations: { ...alert.annotations, escalated_to: data.severity }, endsAt: at };
  return [ended, alert];
}

function summaryOf(data: AlertEventData): string {
  const { metric, value, threshold } = data.data;
  const where = data.device_id === '*' ? 'the fleet' : `device ${data.device_id}`;
  if (typeof metric === 'string' && typeof value === 'number') return `${data.anomaly_type} on ${where}: ${metric} ${value} (threshold ${String(threshold)})`;
  return `${data.anomaly_type} on ${where}`;
}

/** Alertmanager (or anything speaking its API v2): `POST <ALERTMANAGER_URL>/api/v2/alerts` with an array. */
export class AlertmanagerSink implements Sink {
  readonly target: string;
  private readonly endpoint: string;

  constructor(
    readonly name: string,
    baseUrl: string,
    private readonly limits: HttpLimits,
  ) {
    this.endpoint = `${baseUrl.replace(/\/+$/, '')}/api/v2/alerts`;
    this.target = originOf(baseUrl);
  }

  /** Alert events only: device online/offline is not an alert (device_offline is one, raised by the hub). */
  accepts(event: CloudEvent): boolean {
    return isAlertEventData(event.data);
  }

  deliver(event: CloudEvent): Promise<DeliveryOutcome> {
    if (!isAlertEventData(event.data)) return Promise.resolve({ ok: true });
    return this.postAlerts(postableAlertsFor(event.type, event.data));
  }

  /** NOTIFY_MAX_BODY_BYTES: a post is at most this long (the re-send splits its alerts by it). */
  get maxBodyBytes(): number {
    return this.limits.maxBodyBytes;
  }

  postAlerts(alerts: readonly PostableAlert[]): Promise<DeliveryOutcome> {
    return post(this.endpoint, { 'content-type': 'application/json', 'user-agent': `Vigil/${VERSION}` }, JSON.stringify(alerts), this.limits);
  }
}
