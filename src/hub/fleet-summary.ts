import { isDeviceId } from '../domain/device-id.js';
import type { Faults } from '../errors/boundary.js';
import type { Metrics } from '../metrics.js';
import type { DeviceRegistry } from './device-registry.js';
import type { Insights } from './insights.js';
import type { HubOwnerApi, OwnedRows } from '../cluster/owner-api/index.js';
import type { DeviceState } from '../domain/device-state.js';
import { iso } from '../domain/representations.js';

/**
 * The uWS topic summary frames are published on; `*` is not allowed in device ids, so no device
 * topic can collide with it.
 */
export const SUMMARY_TOPIC = '*summary';

export interface FleetSummaryOptions {
  /** How often changed summaries are sent (FLEET_SUMMARY_INTERVAL_MS). */
  readonly intervalMs: number;
  /** Devices per frame at most (FLEET_SUMMARY_CHUNK): the full snapshot is chunked, so is a large delta. */
  readonly chunk: number;
  /**
   * A full snapshot is sent while the connection's send buffer holds less than this, the rest as it
   * drains (below the lag threshold, so a large fleet's snapshot never makes its receiver "lag").
   */
  readonly paceBytes: number;
}

/** How often snapshots still being sent are looked at (their sockets drained meanwhile). */
const PACE_MS = 20;
/** Deltas held for a receiver still getting its snapshot; past it the snapshot starts over, fresh. */
const MAX_HELD_DELTAS = 100;

/** What a summary subscriber's connection needs (the session's socket). */
export interface SummarySocket {
  send(frame: string): void;
  bufferedAmount(): number;
  subscribe(channel: string): void;
  unsubscribe(channel: string): void;
  cork(fn: () => void): void;
}

/**
 * Cluster mode: how an owner hands its changed summaries to the other instances once per interval
 * (src/cluster/summary-peers.ts, over the Redis bus) and hears theirs (its own echo dropped).
 */
export interface SummaryPeers {
  readonly instanceId: string;
  publish(message: string): void;
  onMessage(handler: (message: string) => void): void;
}

/** A summary held for a device another instance owns: its text, and which of that owner's ticks it came with. */
interface RemoteEntry {
  readonly entry: string;
  readonly from: string;
  readonly version: number;
}

interface Deps {
  readonly registry: DeviceRegistry;
  readonly insights: Insights;
  readonly owns: (deviceId: string) => boolean;
  readonly owner: HubOwnerApi;
  readonly metrics: Metrics;
  readonly faults: Faults;
  readonly now: () => number;
}


/** One device's row of the fleet table, as it travels in `fleet_summary` frames (the reference form). */
export function summaryEntryReference(state: DeviceState, insights: Insights): string {
  return JSON.stringify({
    id: state.id,
    type: state.type,
    name: state.name,
    status: state.status,
    last_seen: iso(state.lastSeen),
    battery_level: state.telemetry?.batteryLevel ?? null,
    rssi: state.telemetry?.rssi ?? null,
    score: insights.health(state.id)?.score ?? null,
    active_alerts: insights.activeAlerts(state.id).length,
    flapping: state.flapping,
  });
}

const text = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));
const num = (v: number | null | undefined): string => (v === null || v === undefined ? 'null' : String(v));

/**
 * The row written out by hand: the same text as the reference (the unit test holds them equal),
 * built for every changed device each interval. Ids are validated to [A-Za-z0-9._:-] and numbers
 * to be finite, so only type and name need escaping.
 */
export function summaryEntry(state: DeviceState, insights: Insights): string {
  const t = state.telemetry;
  return (
    `{"id":"${state.id}","type":${text(state.type)},"name":${text(state.name)},"status":"${state.status}",` +
    `"last_seen":${state.lastSeen === null ? 'null' : `"${new Date(state.lastSeen).toISOString()}"`},` +
    `"battery_level":${num(t?.batteryLevel)},"rssi":${num(t?.rssi)},"score":${num(insights.health(state.id)?.score)},` +
    `"active_alerts":${insights.activeAlerts(state.id).length},"flapping":${state.flapping}}`
  );
}

/**
 * The live fleet table (`subscribe_all` with `"summaries": true`): state, not events. The hot path
 * only marks a device dirty (a Set add, allocating only on its first change in an interval); once
 * an interval the changed devices' rows are built once, and one frame (chunked) is published on one
 * uWS topic for every subscriber, so the cost follows the number of devices that changed, not the
 * message rate. A new subscriber (or one that fell behind) gets the whole fleet first, built once
 * and shared by everyone joining before the next interval.
 *
 * In a cluster only a device's owner has its readings, scores and alerts: each owner publishes its
 * changed rows per interval to the other instances, which keep the newest row of every device they
 * do not own (and ask every owner for theirs at start), so the full snapshot is answered here,
 * synchronously, and no change can fall between it and the deltas after it.
 */
export class FleetSummaries {
  private readonly dirty = new Set<string>();
  private readonly removed = new Set<string>();
  private readonly remote = new Map<string, RemoteEntry>();
  /** Rows from other owners since the last interval, for this instance's subscribers. */
  private readonly remotePending = new Map<string, string>();
  private subscribers = 0;
  private tick = 0;
  private full: string[] | null = null;
  private peers: SummaryPeers | null = null;
  private timer: NodeJS.Timeout | null = null;
  private opts: FleetSummaryOptions = { intervalMs: 1000, chunk: 1000, paceBytes: 64 * 1024 };
  /** Receivers of a full snapshot not sent whole yet: its chunks, the next one, and the deltas since. */
  private readonly sending = new Map<SummarySocket, { frames: string[]; next: number; deltas: string[] }>();
  private pacer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: Deps) {
    deps.owner.serve({ fleetSummary: () => this.ownedRows() });
  }

  /** Dirty marks are kept only while someone may read them: local subscribers, or other instances. */
  private get tracking(): boolean {
    return this.subscribers > 0 || this.peers !== null;
  }

  /** Hot path: the device's row changed (reading, status, score, alert, settings). */
  touch(deviceId: string): void {
    if (this.subscribers > 0 || this.peers !== null) this.dirty.add(deviceId);
  }

  /** The device was deleted (on every instance, each tells its own subscribers). */
  removedDevice(deviceId: string): void {
    this.remote.delete(deviceId);
    this.remotePending.delete(deviceId);
    if (!this.tracking) return;
    this.dirty.delete(deviceId);
    this.removed.add(deviceId);
  }

  /** Starts the interval; `peers` in cluster mode (then every owner's rows are asked for once). */
  start(opts: FleetSummaryOptions, peers: SummaryPeers | null): void {
    this.opts = opts;
    this.peers = peers;
    if (peers !== null) {
      peers.onMessage((message) => this.fromPeer(message));
      this.deps.owner
        .fleetSummary()
        .then(({ answers }) => {
          for (const answer of answers) this.merge(answer.from, answer.version, answer.devices);
        })
        .catch(this.deps.faults.catcher('fleet_summary', { op: 'seed' }));
    }
    this.timer = setInterval(this.deps.faults.guard('fleet_summary', () => this.flush()), opts.intervalMs);
    this.timer.unref();
    this.pacer = setInterval(
      this.deps.faults.guard('fleet_summary', () => {
        for (const socket of this.sending.keys()) this.pump(socket);
      }),
      PACE_MS,
    );
    this.pacer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    if (this.pacer !== null) clearInterval(this.pacer);
    this.timer = null;
    this.pacer = null;
    this.sending.clear();
  }

  /** A new subscriber: the full snapshot, then the topic, in one corked block (nothing falls between). */
  join(socket: SummarySocket, lagging: boolean): void {
    this.subscribers++;
    this.deps.metrics.fleetSummarySubscribers.set(this.subscribers);
    if (!lagging) this.resend(socket);
  }

  /** `open` false: the connection is gone (uWS left its topics itself; the socket must not be used). */
  leave(socket: SummarySocket, open = true): void {
    this.sending.delete(socket);
    if (open) socket.unsubscribe(SUMMARY_TOPIC);
    if (--this.subscribers > 0 || this.peers !== null) return this.deps.metrics.fleetSummarySubscribers.set(this.subscribers);
    this.deps.metrics.fleetSummarySubscribers.set(0);
    // Nobody reads the marks any more: a later subscriber starts from a fresh full snapshot.
    this.dirty.clear();
    this.removed.clear();
    this.full = null;
  }

  /** A subscriber that fell behind stops getting deltas; on catching up it gets a full snapshot again. */
  pause(socket: SummarySocket): void {
    socket.unsubscribe(SUMMARY_TOPIC);
    this.sending.delete(socket);
  }

  /** A full snapshot, paced by the send buffer; the deltas published meanwhile follow it, then the topic. */
  resend(socket: SummarySocket): void {
    this.sending.set(socket, { frames: this.fullFrames(), next: 0, deltas: [] });
    this.pump(socket);
  }

  private pump(socket: SummarySocket): void {
    const job = this.sending.get(socket);
    if (job === undefined) return;
    socket.cork(() => {
      while (job.next < job.frames.length && socket.bufferedAmount() < this.opts.paceBytes) socket.send(job.frames[job.next++]!);
      if (job.next < job.frames.length) return;
      for (const frame of job.deltas) socket.send(frame);
      this.sending.delete(socket);
      socket.subscribe(SUMMARY_TOPIC);
    });
  }

  /**
   * The whole fleet as chunks, built at most once per interval: changes after it are marked dirty
   * and reach every subscriber in the next delta.
   */
  private fullFrames(): string[] {
    if (this.full !== null) return this.full;
    const rows: string[] = [];
    const { registry, insights, owns } = this.deps;
    for (const state of registry.values()) {
      const remote = this.remote.get(state.id);
      rows.push(remote !== undefined && !(owns(state.id) && this.dirty.has(state.id)) ? remote.entry : summaryEntry(state, insights));
    }
    for (const [id, remote] of this.remote) if (registry.get(id) === undefined) rows.push(remote.entry);
    const frames = this.frames(rows, [], true);
    this.full = frames;
    return frames;
  }

  /** Once an interval: this instance's changed rows to the other owners and, with remote ones, to subscribers. */
  flush(): void {
    this.tick++;
    if (this.dirty.size === 0 && this.removed.size === 0 && this.remotePending.size === 0) return;
    const { registry, insights, owns } = this.deps;
    const rows: string[] = [];
    for (const id of this.dirty) {
      const state = registry.get(id);
      if (state === undefined) this.removed.add(id);
      // A device another instance owns: its owner sends the row (it has the readings).
      else if (owns(id)) {
        rows.push(summaryEntry(state, insights));
        this.remote.delete(id); // this instance speaks for it now
      }
    }
    this.dirty.clear();
    if (this.peers !== null && rows.length > 0) this.toPeers(rows);
    const removed = [...this.removed];
    this.removed.clear();
    for (const row of this.remotePending.values()) rows.push(row);
    this.remotePending.clear();
    this.full = null;
    if (this.subscribers === 0) return;
    const frames = this.frames(rows, removed, false);
    for (const frame of frames) this.publish(frame);
    for (const [socket, job] of this.sending) {
      // Too far behind: a fresh snapshot (it includes what these deltas carry) instead of more held frames.
      if (job.deltas.length + frames.length > MAX_HELD_DELTAS) this.sending.set(socket, { frames: this.fullFrames(), next: 0, deltas: [] });
      else job.deltas.push(...frames);
    }
  }

  /** Set by the WebSocket server: one publish reaches every subscriber of this instance. */
  publish: (frame: string) => void = () => undefined;

  private frames(rows: readonly string[], removed: readonly string[], full: boolean): string[] {
    const { chunk } = this.opts;
    const timestamp = new Date(this.deps.now()).toISOString();
    const frames: string[] = [];
    const count = Math.max(1, Math.ceil(rows.length / chunk));
    for (let i = 0; i < count; i++) {
      const part = rows.slice(i * chunk, (i + 1) * chunk);
      const last = i === count - 1;
      // Removed ids go with the last chunk; they are validated device ids, so need no escaping.
      const frame =
        `{"type":"fleet_summary","full":${full},"last":${last},"devices":[${part.join(',')}],` +
        `"removed":${last ? JSON.stringify(removed) : '[]'},"timestamp":"${timestamp}"}`;
      const kind = full ? 'full' : 'delta';
      this.deps.metrics.fleetSummaryFrames.inc({ kind });
      this.deps.metrics.fleetSummaryBytes.inc({ kind }, Buffer.byteLength(frame));
      this.deps.metrics.fleetSummaryDevices.observe(part.length);
      frames.push(frame);
    }
    return frames;
  }

  private toPeers(rows: readonly string[]): void {
    const { chunk } = this.opts;
    for (let i = 0; i < rows.length; i += chunk) {
      const message = `${this.peers!.instanceId}|${this.tick}|[${rows.slice(i, i + chunk).join(',')}]`;
      this.deps.metrics.fleetSummaryPeerBatches.inc({ direction: 'out' });
      this.peers!.publish(message);
    }
  }

  /** `from|tick|[rows]` from another owner (its echo was dropped by the bus adapter). */
  private fromPeer(message: string): void {
    const a = message.indexOf('|');
    const b = message.indexOf('|', a + 1);
    const version = Number(message.slice(a + 1, b));
    let rows: unknown;
    try {
      rows = a > 0 && b > a && Number.isSafeInteger(version) ? JSON.parse(message.slice(b + 1)) : null;
    } catch {
      rows = null;
    }
    if (!Array.isArray(rows)) return this.deps.metrics.fleetSummaryPeerBatches.inc({ direction: 'invalid' });
    this.deps.metrics.fleetSummaryPeerBatches.inc({ direction: 'in' });
    this.merge(message.slice(0, a), version, rows);
  }

  /**
   * Rows of another owner at its `version` (a tick; an answer to the start-up question is that
   * owner's tick + 0.5: newer than the delta before it, older than the next). An older row from the
   * same owner never replaces a newer one; a row from a different owner (ownership moved) does.
   */
  private merge(from: string, version: number, rows: readonly unknown[]): void {
    if (this.peers !== null && from === this.peers.instanceId) return;
    for (const row of rows) {
      const entry = normalizeRow(row);
      if (entry === null) {
        this.deps.metrics.fleetSummaryPeerBatches.inc({ direction: 'invalid' });
        continue;
      }
      const held = this.remote.get(entry.id);
      if (held !== undefined && held.from === from && held.version > version) continue;
      this.remote.set(entry.id, { entry: entry.text, from, version });
      this.full = null;
      if (this.subscribers > 0) this.remotePending.set(entry.id, entry.text);
    }
  }

  /** The rows of every device this instance owns, for an instance starting up. */
  private ownedRows(): OwnedRows {
    const devices: unknown[] = [];
    for (const state of this.deps.registry.values()) {
      if (this.deps.owns(state.id)) devices.push(JSON.parse(summaryEntry(state, this.deps.insights)) as unknown);
    }
    return { from: this.peers?.instanceId ?? '', version: this.tick + 0.5, devices };
  }
}

const STATUSES = new Set(['online', 'offline', 'unknown']);
const nullableNumber = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const shortText = (v: unknown): string | null => (typeof v === 'string' && v.length <= 256 ? v : null);

/** A row from another instance, checked and written again in the frame's field order (never passed on as received). */
function normalizeRow(row: unknown): { id: string; text: string } | null {
  if (typeof row !== 'object' || row === null) return null;
  const r = row as Record<string, unknown>;
  if (!isDeviceId(r.id) || typeof r.status !== 'string' || !STATUSES.has(r.status)) return null;
  const lastSeen = typeof r.last_seen === 'string' && !Number.isNaN(Date.parse(r.last_seen)) ? r.last_seen : null;
  const text = JSON.stringify({
    id: r.id,
    type: shortText(r.type),
    name: shortText(r.name),
    status: r.status,
    last_seen: lastSeen,
    battery_level: nullableNumber(r.battery_level),
    rssi: nullableNumber(r.rssi),
    score: nullableNumber(r.score),
    active_alerts: typeof r.active_alerts === 'number' && Number.isSafeInteger(r.active_alerts) && r.active_alerts >= 0 ? r.active_alerts : 0,
    flapping: r.flapping === true,
  });
  return { id: r.id, text };
}
