import { vi } from 'vitest';
import type { FleetRecovery } from '../../src/fanout/fanout.js';
import { Faults } from '../../src/errors/boundary.js';
import type { Prepared, ResumeFrom } from '../../src/hub/hub.js';
import { LagRouter } from '../../src/hub/lag-router.js';
import { Session, type Authenticate, type ClientSocket, type SessionLimits } from '../../src/hub/session.js';
import type { SessionHub } from '../../src/hub/session-hub.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import type { ApiKey, Credentials, Scope } from '../../src/security/api-keys.js';

export type Frame = Record<string, unknown> & { type: string };

/** A connection that records what the session does to it; `buffered` is what the client has not read. */
export class FakeSocket implements ClientSocket {
  readonly sent: string[] = [];
  readonly topics = new Set<string>();
  buffered = 0;
  closed: { code: number; reason: string } | null = null;
  corks = 0;

  send(frame: string): void {
    this.sent.push(frame);
  }
  subscribe(channel: string): void {
    this.topics.add(channel);
  }
  unsubscribe(channel: string): void {
    this.topics.delete(channel);
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  cork(fn: () => void): void {
    this.corks++;
    fn();
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }

  /** Every frame sent, parsed. */
  frames(): Frame[] {
    return this.sent.map((f) => JSON.parse(f) as Frame);
  }
  /** The frames sent since the last call. */
  take(): Frame[] {
    return this.sent.splice(0).map((f) => JSON.parse(f) as Frame);
  }
}

/** A device frame as the hub numbers it (`seq` is what held frames are compared by). */
export const update = (deviceId: string, seq: number, extra: Record<string, unknown> = {}): string => JSON.stringify({ type: 'device_update', device_id: deviceId, seq, ...extra });
export const status = (deviceId: string, seq: number, fleetSeq: number, to: string): string => JSON.stringify({ type: 'status_change', device_id: deviceId, seq, fleet_seq: fleetSeq, status: to });

/** The hub as a session sees it: first frames a test decides, follows counted. */
export class FakeHub implements SessionHub {
  epoch = 'epoch-1';
  readonly follows = new Map<string, number>();
  /** A device's first frames: a snapshot `seq` 5 unless a test sets its own. */
  prepareDevice: (deviceId: string, resume: ResumeFrom | null) => Prepared | Promise<Prepared> = (deviceId) => ({ recovered: null, frames: [JSON.stringify({ type: 'snapshot', device_id: deviceId, seq: 5 })], seq: 5 });
  prepareAll: (since: number | null) => FleetRecovery | Promise<FleetRecovery> = (since) => ({ fleetSeq: 10, frames: since === null ? null : [] });
  readonly acknowledgeAlertAnywhere = vi.fn<SessionHub['acknowledgeAlertAnywhere']>(async () => null);
  readonly summaries = { join: vi.fn(), leave: vi.fn(), pause: vi.fn(), resend: vi.fn() };

  follow(channel: string): Promise<void> {
    this.follows.set(channel, (this.follows.get(channel) ?? 0) + 1);
    return Promise.resolve();
  }
  unfollow(channel: string): void {
    const n = (this.follows.get(channel) ?? 0) - 1;
    if (n === 0) this.follows.delete(channel);
    else this.follows.set(channel, n);
  }
  prepare(deviceId: string, resume: ResumeFrom | null): Prepared | Promise<Prepared> {
    return this.prepareDevice(deviceId, resume);
  }
  prepareFleet(since: number | null): FleetRecovery | Promise<FleetRecovery> {
    return this.prepareAll(since);
  }
}

export const LIMITS: SessionLimits = { maxFrameBytes: 4096, maxSubscriptions: 5, maxMessagesPerSecond: 10, lagBytes: 1000, slowDeadlineMs: 3000 };

export const ANONYMOUS: Credentials = { principal: { kind: 'anonymous' }, expiresAt: null };

export interface Harness {
  readonly session: Session;
  readonly socket: FakeSocket;
  readonly hub: FakeHub;
  readonly lag: LagRouter;
  readonly metrics: Metrics;
  /** Sends a client message (an object is sent as JSON) at `now` (default: the fake clock). */
  send(message: unknown, now?: number): void;
}

export function harness(options: { credentials?: Credentials | null; authenticate?: Authenticate; limits?: Partial<SessionLimits> } = {}): Harness {
  const socket = new FakeSocket();
  const hub = new FakeHub();
  const lag = new LagRouter();
  const metrics = createMetrics();
  const faults = new Faults(createLogger('silent'), metrics);
  const limits = { ...LIMITS, ...options.limits };
  const credentials = options.credentials === undefined ? ANONYMOUS : options.credentials;
  const session = new Session('c1', socket, { hub, lag, limits, metrics, faults }, credentials, options.authenticate ?? (() => null));
  const send = (message: unknown, now = Date.now()) => session.onText(typeof message === 'string' ? message : JSON.stringify(message), now);
  return { session, socket, hub, lag, metrics, send };
}

/** A counter's or gauge's current value, by label set. */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const found = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return found?.value ?? 0;
}

/** The credentials of an API key (read scope unless told), optionally limited to devices or expiring. */
export function keyCredentials(id: string, options: { scopes?: readonly Scope[]; deviceIds?: readonly string[]; expiresAt?: number } = {}): Credentials {
  const key: ApiKey = { id, name: id, scopes: new Set(options.scopes ?? ['read']), deviceIds: options.deviceIds === undefined ? null : new Set(options.deviceIds), createdAt: 0 };
  return { principal: { kind: 'key', key }, expiresAt: options.expiresAt ?? null };
}
