import type { Faults } from '../errors/boundary.js';
import type { DeviceRegistry } from '../hub/device-registry.js';
import type { Metrics } from '../metrics.js';
import type { Cluster } from './cluster.js';

/** Handles one device message on this instance (the MQTT ingest's own dispatch). */
export type Dispatch = (topic: string, payload: Buffer, receivedAt: number) => void;

/** Messages parked per device while its seq is read back; past this they are handled unsynced. */
const MAX_PARKED = 50_000;

/**
 * Decides where a device message is handled so each device has one owner at a time: another
 * instance's device is forwarded to it; a device this instance (newly) owns waits, once per
 * membership change, for its stored seq so numbering continues where the previous owner stopped.
 * The common case, an owned and synced device, costs one hash and one Map lookup.
 */
export class IngestRouter {
  private readonly parked = new Map<string, (() => void)[]>();
  private parkedCount = 0;
  private loading = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly registry: DeviceRegistry,
    private readonly metrics: Metrics,
    private readonly dispatch: Dispatch,
    private readonly faults: Faults,
  ) {
    cluster.membership.onChange(faults.guard('cluster', () => this.syncOwned()));
  }

  /**
   * Ownership moved: read back the seq of every known device this instance now owns, at once, so
   * frames numbered outside the ingest path (expiries, sweeps) continue where the last owner stopped.
   */
  private async syncOwned(): Promise<void> {
    const membership = this.cluster.membership;
    const version = membership.version;
    const owned = [...this.registry.values()].filter((s) => s.syncedVersion !== version && membership.owns(s.id));
    for (let i = 0; i < owned.length; i += 5000) {
      const chunk = owned.slice(i, i + 5000);
      const stored = await this.cluster.storedSeqs(chunk.map((s) => s.id)).catch(() => null);
      if (stored === null || membership.version !== version) return;
      chunk.forEach((state, j) => {
        const seq = stored[j];
        if (seq !== null && seq !== undefined && seq > state.seq) state.seq = seq;
        if (!this.parked.has(state.id)) state.syncedVersion = version;
      });
    }
  }

  /** True when the message was taken (forwarded or parked); false: handle it now. */
  route(deviceId: string, topic: string, payload: Buffer, receivedAt: number, forwarded: boolean): boolean {
    const membership = this.cluster.membership;
    if (!forwarded) {
      const owner = membership.ownerOf(deviceId);
      if (owner !== this.cluster.instanceId) {
        this.cluster.forward(owner, topic, payload, () => {
          // The owner was gone: decide again with it evicted (maybe this instance now).
          if (!this.route(deviceId, topic, payload, receivedAt, false)) this.dispatch(topic, payload, receivedAt);
        });
        return true;
      }
    }
    const state = this.registry.get(deviceId);
    if (state !== undefined && state.syncedVersion === membership.version && !this.parked.has(deviceId)) return false;
    if (this.parkedCount >= MAX_PARKED) {
      this.metrics.clusterUnsynced.inc();
      return false;
    }
    let queue = this.parked.get(deviceId);
    if (queue === undefined) this.parked.set(deviceId, (queue = []));
    queue.push(() => this.dispatch(topic, payload, receivedAt));
    this.parkedCount++;
    if (!this.loading) setImmediate(this.loadParked);
    this.loading = true;
    return true;
  }

  private readonly loadParked = (): void => {
    this.load().catch((error: unknown) => {
      this.loading = false; // the next parked message starts a new round
      this.faults.report('cluster', error, { op: 'replay-parked' });
    });
  };

  /** Reads the stored seq of every parked device in one round trip, then replays them in order. */
  private async load(): Promise<void> {
    const version = this.cluster.membership.version;
    const ids = [...this.parked.keys()];
    let stored: (number | null)[];
    try {
      stored = await this.cluster.storedSeqs(ids);
    } catch {
      stored = ids.map(() => null); // Redis away: number on from what this instance knows
      this.metrics.clusterUnsynced.inc(ids.length);
    }
    ids.forEach((id, i) => {
      const queue = this.parked.get(id)!;
      this.parked.delete(id);
      this.parkedCount -= queue.length;
      // A new device is admitted here, its owner (the registry counts the first message refused).
      const state = this.registry.admit(id);
      if (typeof state === 'string') {
        this.registry.refuse(state, queue.length - 1);
        return;
      }
      const seq = stored[i];
      if (seq !== null && seq !== undefined && seq > state.seq) state.seq = seq;
      state.syncedVersion = version;
      for (const handle of queue) handle();
    });
    this.loading = false;
    if (this.parked.size > 0) {
      this.loading = true;
      setImmediate(this.loadParked);
    }
  }
}
