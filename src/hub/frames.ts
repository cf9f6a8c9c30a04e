import type { StatusChange } from '../domain/device-status.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { Alert, AlertTransition, ScoredHealth } from '../domain/alert.js';
import type { Command } from '../domain/command.js';
import type { DeviceState } from '../domain/device-state.js';
import { alertData, commandData, healthData, iso, telemetryData } from '../domain/representations.js';

/** Hub → client frames of the device channels (docs/websocket-protocol.md). Built once per event. */

/** One-entry caches: consecutive messages mostly share their millisecond, and toISOString is not free. */
let tsMs = NaN;
let tsIso = '';
let receivedMs = NaN;
let receivedIso = '';
const num = (v: number | null): string => (v === null ? 'null' : String(v));

/**
 * The hot path's frame, written out by hand: the same text as JSON.stringify of the object (the
 * unit test holds them equal) without building the object or formatting a date per message.
 * Device ids are validated to [A-Za-z0-9._:-] and numbers to be finite, so neither needs escaping.
 */
export function deviceUpdateFrame(state: DeviceState, t: Telemetry): string {
  if (t.ts !== tsMs) {
    tsMs = t.ts;
    tsIso = new Date(t.ts).toISOString();
  }
  if (t.receivedAt !== receivedMs) {
    receivedMs = t.receivedAt;
    receivedIso = new Date(t.receivedAt).toISOString();
  }
  return (
    `{"type":"device_update","device_id":"${state.id}","seq":${state.seq},"data":{"battery_level":${num(t.batteryLevel)},` +
    `"rssi":${num(t.rssi)},"response_time_ms":${num(t.responseTimeMs)},"error_rate":${num(t.errorRate)},` +
    `"metrics":${t.metrics === null ? 'null' : JSON.stringify(t.metrics)},"timestamp":"${tsIso}","received_at":"${receivedIso}"},` +
    `"timestamp":"${tsIso}"}`
  );
}

/** The reference form of deviceUpdateFrame (tests compare the two). */
export function deviceUpdateFrameReference(state: DeviceState, t: Telemetry): string {
  return JSON.stringify({
    type: 'device_update',
    device_id: state.id,
    seq: state.seq,
    data: telemetryData(t),
    timestamp: iso(t.ts),
  });
}

export function statusChangeFrame(change: StatusChange, seq: number, flapping: boolean): string {
  return JSON.stringify({
    type: 'status_change',
    device_id: change.deviceId,
    seq,
    status: change.status,
    previous: change.previous,
    reason: change.reason,
    flapping,
    last_seen: iso(change.lastSeen),
    timestamp: iso(change.at),
  });
}

export function healthScoreFrame(deviceId: string, seq: number, health: ScoredHealth, previous: number | null): string {
  return JSON.stringify({
    type: 'health_score',
    device_id: deviceId,
    seq,
    score: health.score,
    previous,
    components: health.components,
    timestamp: iso(health.at),
  });
}

export function alertFrame(seq: number, alert: Alert, transition: AlertTransition, at: number): string {
  return JSON.stringify({
    type: 'anomaly_alert',
    device_id: alert.deviceId,
    seq,
    alert_id: alert.id,
    anomaly_type: alert.type,
    severity: alert.severity,
    state: transition,
    data: alert.data,
    timestamp: iso(at),
  });
}

export function commandUpdateFrame(seq: number, c: Command): string {
  return JSON.stringify({ type: 'command_update', seq, ...commandData(c), timestamp: iso(c.updatedAt) });
}

/**
 * The full current state of a device, sent right after `subscribe_device`. Its `seq` is the last
 * one already reflected, so the stream that follows continues at seq + 1.
 */
export function snapshotFrame(
  deviceId: string,
  state: DeviceState | undefined,
  epoch: string,
  now: number,
  health: ScoredHealth | null,
  alerts: readonly Alert[],
  timeout: { readonly ms: number; readonly source: string } | null = null,
): string {
  return JSON.stringify({
    type: 'snapshot',
    device_id: deviceId,
    seq: state?.seq ?? 0,
    epoch,
    data: {
      status: state?.status ?? 'unknown',
      flapping: state?.flapping ?? false,
      last_seen: iso(state?.lastSeen ?? null),
      offline_timeout_s: timeout === null ? null : timeout.ms / 1000,
      offline_timeout_source: timeout?.source ?? null,
      telemetry: state?.telemetry ? telemetryData(state.telemetry) : null,
      health: health === null ? null : healthData(health),
      active_alerts: alerts.map(alertData),
    },
    timestamp: iso(now),
  });
}
