import type { Counter } from 'prom-client';
import type { Alert, AlertTransition, ScoredHealth } from '../../src/domain/alert.js';
import type { Command } from '../../src/domain/command.js';
import type { StatusChange } from '../../src/domain/device-status.js';
import type { EventSink } from '../../src/domain/event-sink.js';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { Faults } from '../../src/errors/boundary.js';
import type { Fanout } from '../../src/fanout/fanout.js';
import { createLocalFanout } from '../../src/fanout/local-fanout.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';

/** Fakes and real in-process pieces for the hub's unit tests (tests/unit/hub-*.test.ts): no services. */

/** What the hub handed to storage, in order, one row per call. */
export type SinkRow =
  | { readonly kind: 'telemetry'; readonly t: Telemetry }
  | { readonly kind: 'status'; readonly change: StatusChange }
  | { readonly kind: 'health'; readonly deviceId: string; readonly health: ScoredHealth }
  | { readonly kind: 'alert'; readonly alert: Alert; readonly transition: AlertTransition | undefined }
  | { readonly kind: 'command'; readonly command: Command };

export function recordingSink(): EventSink & { readonly rows: SinkRow[] } {
  const rows: SinkRow[] = [];
  return {
    rows,
    enqueueTelemetry: (t) => rows.push({ kind: 'telemetry', t }),
    enqueueStatusChange: (change) => rows.push({ kind: 'status', change }),
    enqueueHealthScore: (deviceId, health) => rows.push({ kind: 'health', deviceId, health }),
    enqueueAlert: (alert, transition) => rows.push({ kind: 'alert', alert, transition }),
    enqueueCommand: (command) => rows.push({ kind: 'command', command }),
  };
}

/** A frame delivered to this process's clients, parsed. */
export interface Delivered {
  readonly channel: string;
  readonly key: string;
  readonly frame: Record<string, unknown>;
}

/** The real in-process fan-out, delivering to a list (`delivered`) instead of WebSocket clients. */
export function recordingLocalFanout(now: () => number = Date.now): { fanout: Fanout; delivered: Delivered[] } {
  const fanout = createLocalFanout({ windowMs: 120_000, maxBytesPerDevice: 65_536, ttlMs: 300_000, fleetWindowMs: 120_000, fleetMaxBytes: 1 << 20, now });
  const delivered: Delivered[] = [];
  const parse = (frame: string) => JSON.parse(frame) as Record<string, unknown>;
  void fanout.start({
    toDevice: (channel, frame, key) => delivered.push({ channel, key, frame: parse(frame) }),
    toAll: (frame, key) => delivered.push({ channel: '*', key, frame: parse(frame) }),
  });
  return { fanout, delivered };
}

/** Metrics and a fault boundary that logs nothing. */
export function quietBoundary(): { metrics: Metrics; faults: Faults } {
  const metrics = createMetrics();
  return { metrics, faults: new Faults(createLogger('silent'), metrics) };
}

/** A counter's value for the labels given (0 if never counted). */
export async function counted(counter: Counter, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const { values } = await counter.get();
  const match = values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return match.reduce((sum, v) => sum + v.value, 0);
}

export function telemetry(deviceId: string, ts: number, receivedAt = ts, batteryLevel: number | null = 80): Telemetry {
  return { deviceId, ts, receivedAt, batteryLevel, rssi: -60, responseTimeMs: null, errorRate: null, metrics: null };
}
