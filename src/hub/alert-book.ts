import { randomUUID } from 'node:crypto';
import type { Severity } from '../domain/alert-rules.js';
import type { InsightSink } from './alert-types.js';
import type { Alert } from '../domain/alert.js';
import type { DeviceState } from '../domain/device-state.js';

/**
 * Every active alert this instance holds, by id, and the transitions that change one: each is
 * handed to the sink (numbered, pushed and stored by the hub). `active` is the device's own map
 * (one active alert per type).
 */
export class AlertBook {
  private readonly byId = new Map<string, Alert>();

  constructor(private readonly sink: InsightSink) {}

  raise(state: DeviceState, active: Map<string, Alert>, type: string, severity: Severity, now: number, data: Record<string, unknown>): void {
    const alert: Alert = {
      id: randomUUID(),
      deviceId: state.id,
      type,
      severity,
      state: 'raised',
      data,
      raisedAt: now,
      updatedAt: now,
      clearedAt: null,
      acknowledgedAt: null,
      acknowledgedBy: null,
    };
    active.set(type, alert);
    this.byId.set(alert.id, alert);
    this.sink.alert(state, alert, 'raised');
  }

  clear(state: DeviceState, active: Map<string, Alert>, alert: Alert, now: number, data: Record<string, unknown>): void {
    active.delete(alert.type);
    alert.state = 'cleared';
    alert.clearedAt = now;
    alert.updatedAt = now;
    alert.data = { ...alert.data, cleared_with: data.value ?? null, ...(data.reason === undefined ? {} : { cleared_because: data.reason }) };
    this.byId.delete(alert.id);
    this.sink.alert(state, alert, 'cleared');
  }

  /** The severity of an active alert rose (escalation): one `updated` transition. */
  escalate(state: DeviceState, alert: Alert, severity: Severity, now: number, value: number | null): void {
    alert.data = { ...alert.data, escalated_from: alert.severity, escalated_at: new Date(now).toISOString(), value };
    alert.severity = severity;
    alert.updatedAt = now;
    this.sink.alert(state, alert, 'updated');
  }

  acknowledge(alertId: string, by: string, now: number, stateOf: (deviceId: string) => DeviceState): Alert | null {
    const alert = this.byId.get(alertId);
    if (alert === undefined || alert.state !== 'raised') return alert ?? null;
    alert.state = 'acknowledged';
    alert.acknowledgedAt = now;
    alert.acknowledgedBy = by;
    alert.updatedAt = now;
    this.sink.alert(stateOf(alert.deviceId), alert, 'acknowledged');
    return alert;
  }

  /** An alert this instance stops holding without a transition (another instance clears it). */
  drop(alert: Alert): void {
    this.byId.delete(alert.id);
  }

  restore(alert: Alert): void {
    this.byId.set(alert.id, alert);
  }

  get(alertId: string): Alert | undefined {
    return this.byId.get(alertId);
  }

  allActive(): Alert[] {
    return [...this.byId.values()].filter((a) => a.state !== 'cleared');
  }
}
