import type { Faults } from '../errors/boundary.js';
import type { Metrics } from '../metrics.js';
import type { DeviceRegistry } from './device-registry.js';
import { parsePeerMessage, peerMessages, summaryFrames } from './fleet-summary-frames.js';
import { normalizeRow, summaryEntry, type RowInsights } from './fleet-summary-rows.js';
import type { SummaryPeers, SummarySocket } from './fleet-summary-ports.js';
import type { HubOwnerApi, OwnedRows } from '../cluster/owner-api/index.js';

export { summaryEntry, summaryEntryReference } from './fleet-summary-rows.js';
export type { SummaryPeers, SummarySocket } from './fleet-summary-ports.js';

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

/** A summary held for a device another instance owns: its text, and which of that owner's ticks it came with. */
interface RemoteEntry {
  readonly entry: string;
  readonly from: string;
  readonly version: number;
}

interface Deps {
  readonly registry: DeviceRegistry;
  readonly insights: RowInsights;
  readonly owns: (deviceId: string) => boolean;
  readonly owner: HubOwnerApi;
  readonly metrics: Metrics;
  readonly faults: Faults;
  readonly now: () => number;
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
    return summaryFrames(rows, removed, full, this.opts.chunk, this.deps.now(), this.deps.metrics);
  }

  private toPeers(rows: readonly string[]): void {
    for (const message of peerMessages(this.peers!.instanceId, this.tick, rows, this.opts.chunk)) {
      this.deps.metrics.fleetSummaryPeerBatches.inc({ direction: 'out' });
      this.peers!.publish(message);
    }
  }

  /** `from|tick|[rows]` from another owner (its echo was dropped by the bus adapter). */
  private fromPeer(message: string): void {
    const parsed = parsePeerMessage(message);
    if (parsed === null) return this.deps.metrics.fleetSummaryPeerBatches.inc({ direction: 'invalid' });
    this.deps.metrics.fleetSummaryPeerBatches.inc({ direction: 'in' });
    this.merge(parsed.from, parsed.version, parsed.rows);
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

