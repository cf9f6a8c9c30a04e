import type { Alert, ScoredHealth } from './alert.js';
import type { Command } from './command.js';
import type { Telemetry } from './telemetry.js';

/**
 * The public JSON shape of each domain object: the same in REST answers, WebSocket frames and
 * notification events (docs/api.md, docs/websocket-protocol.md).
 */

/** Milliseconds since the epoch as an ISO 8601 string (null stays null). */
export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function telemetryData(t: Telemetry) {
  return {
    battery_level: t.batteryLevel,
    rssi: t.rssi,
    response_time_ms: t.responseTimeMs,
    error_rate: t.errorRate,
    metrics: t.metrics,
    timestamp: iso(t.ts),
    received_at: iso(t.receivedAt),
  };
}

export function healthData(health: ScoredHealth) {
  return { score: health.score, components: health.components, timestamp: iso(health.at) };
}

export function alertData(alert: Alert) {
  return {
    alert_id: alert.id,
    device_id: alert.deviceId,
    anomaly_type: alert.type,
    severity: alert.severity,
    state: alert.state,
    data: alert.data,
    raised_at: iso(alert.raisedAt),
    updated_at: iso(alert.updatedAt),
    cleared_at: iso(alert.clearedAt),
    acknowledged_at: iso(alert.acknowledgedAt),
    acknowledged_by: alert.acknowledgedBy,
  };
}

export function commandData(c: Command) {
  return {
    command_id: c.id,
    device_id: c.deviceId,
    command: c.command,
    params: c.params,
    state: c.state,
    attempts: c.attempts,
    max_attempts: c.maxAttempts,
    timeout_s: c.timeoutS,
    result: c.result,
    idempotency_key: c.idempotencyKey,
    created_at: iso(c.createdAt),
    updated_at: iso(c.updatedAt),
    expires_at: iso(c.expiresAt),
  };
}
