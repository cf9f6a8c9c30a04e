import { randomBytes } from 'node:crypto';
import type { DeviceStatus, StatusChange, TransitionReason } from '../domain/device-status.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { Fanout } from '../fanout/fanout.js';
import type { Metrics } from '../metrics.js';
import type { PresenceListener, PresenceStore } from '../presence/presence-store.js';
import { DeviceRegistry, type DeviceState } from './device-registry.js';
import { deviceUpdateFrame, snapshotFrame, statusChangeFrame } from './frames.js';

/** Where the hub hands what must outlive it; implemented by the batched storage writer. */
export interface EventSink {
  enqueueTelemetry(t: Telemetry): void;
  enqueueStatusChange(c: StatusChange): void;
}

export interface HubOptions {
  readonly fanout: Fanout;
  readonly presence: PresenceStore;
  readonly sink: EventSink;
  readonly metrics: Metrics;
  readonly defaultTimeoutMs: number;
  readonly now?: () => number;
}

/** Channel names are the uWS topics; `*` carries every device's status, health and alert frames. */
export const ALL_CHANNEL = '*';

/**
 * The hub's core: applies telemetry and presence events to the device registry, numbers them per
 * device and hands each frame to the fan-out once. Everything here is synchronous, so a snapshot
 * taken inside a subscribe handler and the stream after it can neither overlap nor leave a gap.
 */
export class Hub implements PresenceListener {
  readonly registry = new DeviceRegistry();
  /** Changes when the hub restarts: a client's `seq` is only comparable within one epoch. */
  readonly epoch = randomBytes(6).toString('base64url');
  private readonly now: () => number;

  constructor(private readonly opts: HubOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** One validated telemetry message: presence, newest state, one frame to its followers, storage. */
  ingestTelemetry(t: Telemetry): void {
    const state = this.registry.getOrCreate(t.deviceId);
    this.heard(state, t.receivedAt, 'telemetry');
    if (state.telemetry === null || t.ts >= state.telemetry.ts) state.telemetry = t;
    state.seq++;
    this.opts.fanout.toDevice(state.id, deviceUpdateFrame(state, t), 'u');
    this.opts.sink.enqueueTelemetry(t);
  }

  heartbeat(deviceId: string, at: number): void {
    this.heard(this.registry.getOrCreate(deviceId), at, 'heartbeat');
  }

  /** A device's own word on `devices/{id}/status` (its Last Will, or `online` when it returns). */
  deviceSaid(deviceId: string, online: boolean, at: number): void {
    const state = this.registry.getOrCreate(deviceId);
    if (online) {
      this.heard(state, at, 'heartbeat');
      return;
    }
    this.opts.presence.remove(deviceId);
    if (state.status !== 'offline') this.transition(state, 'offline', 'last_will', at);
  }

  onExpired(deviceId: string, lastSeen: number, deadline: number): void {
    const state = this.registry.getOrCreate(deviceId);
    if (state.lastSeen === null || state.lastSeen < lastSeen) state.lastSeen = lastSeen;
    if (state.status === 'offline') return;
    const at = this.now();
    // Heard from since the store wrote its deadline (a touch still on its way): not expired.
    if (state.lastSeen + this.timeoutMsOf(state) > at) {
      this.opts.presence.touch(state.id, state.lastSeen, this.timeoutMsOf(state));
      return;
    }
    this.opts.metrics.expiryLag.observe(Math.max(0, at - deadline) / 1000);
    this.transition(state, 'offline', 'timeout', at);
  }

  /** A device recorded online whose presence is gone (found at start or after an outage). */
  reconcileOffline(deviceId: string): void {
    const state = this.registry.getOrCreate(deviceId);
    if (state.status !== 'offline') this.transition(state, 'offline', 'reconcile', this.now());
  }

  snapshot(deviceId: string): string {
    return snapshotFrame(deviceId, this.registry.get(deviceId), this.epoch, this.now());
  }

  timeoutMsOf(state: DeviceState): number {
    return state.timeoutMs ?? this.opts.defaultTimeoutMs;
  }

  private heard(state: DeviceState, at: number, reason: TransitionReason): void {
    if (state.lastSeen === null || at > state.lastSeen) state.lastSeen = at;
    this.opts.presence.touch(state.id, at, this.timeoutMsOf(state));
    if (state.status !== 'online') this.transition(state, 'online', reason, at);
  }

  private transition(state: DeviceState, status: DeviceStatus, reason: TransitionReason, at: number): void {
    const previous = state.status === 'unknown' ? null : state.status;
    this.registry.setStatus(state, status);
    state.seq++;
    const change: StatusChange = { deviceId: state.id, status, previous, reason, lastSeen: state.lastSeen, at };
    const frame = statusChangeFrame(change, state.seq);
    this.opts.fanout.toDevice(state.id, frame, 's');
    this.opts.fanout.toAll(frame, `s:${state.id}`);
    this.opts.sink.enqueueStatusChange(change);
    this.opts.metrics.presenceTransitions.inc({ status, reason });
    this.opts.metrics.devicesOnline.set(this.registry.online);
  }
}
