import type { Faults } from '../errors/boundary.js';
import type { DeviceRegistry } from '../hub/device-registry.js';
import type { Metrics } from '../metrics.js';
import type { Cluster } from './cluster.js';
import type { StreamOwnership } from './stream-ownership.js';

/** What the router reads of the cluster: the members in force and the seqs stored by the fan-out. */
export type RouterCluster = Pick<Cluster, 'instanceId' | 'storedSeqs'> & { readonly membership: Pick<Cluster['membership'], 'version' | 'list' | 'ownerOf' | 'owns' | 'onChange'> };
/** Whether the members list in force at this point of the stream is known, and when the previous owners handed off. */
export type RouterOwnership = Pick<StreamOwnership, 'known' | 'handedOff'>;

/** Handles one device message on this instance (the MQTT ingest's own dispatch). */
export type Dispatch = (topic: string, payload: Buffer, receivedAt: number, retained: boolean) => void;

/** Messages parked per device while its seq is read back; past this they are handled unsynced. */
const MAX_PARKED = 50_000;

/**
 * Decides whether this instance handles a device message. Every instance reads every message
 * (StreamOwnership): another instance's device is skipped, so each device is handled by one owner
 * at a time, in the order the broker received its messages. A device this instance (newly) owns
 * waits, once per membership change, for the previous owner's handoff and then its stored seq, so
 * numbering continues where the previous owner stopped. The common case, an owned and synced
 * device, costs one hash and one Map lookup; a skipped one, the hash.
 */
export class IngestRouter {
  private readonly parked = new Map<string, (() => void)[]>();
  private parkedCount = 0;
  private loading = false;
  private notOwned = 0;
  private readonly flusher: NodeJS.Timeout;

  constructor(
    private readonly cluster: RouterCluster,
    private readonly ownership: RouterOwnership,
    private readonly registry: DeviceRegistry,
    private readonly metrics: Metrics,
    private readonly dispatch: Dispatch,
    private readonly faults: Faults,
  ) {
    cluster.membership.onChange(faults.guard('cluster', () => this.syncOwned()));
    // Counted in a plain number and added once a second, like accepted telemetry: a counter update per message shows in profiles.
    const flush = () => {
      if (this.notOwned === 0) return;
      metrics.clusterNotOwned.inc(this.notOwned);
      this.notOwned = 0;
    };
    this.flusher = setInterval(flush, 1000);
    this.flusher.unref();
    metrics.beforeCollect(flush);
  }

  stop(): void {
    clearInterval(this.flusher);
  }

  /**
   * Ownership moved: once the previous owners handed off, read back the seq of every known device
   * this instance now owns, at once, so frames numbered outside the ingest path (expiries, sweeps)
   * continue where the last owner stopped.
   */
  private async syncOwned(): Promise<void> {
    const membership = this.cluster.membership;
    const version = membership.version;
    await this.ownership.handedOff();
    if (membership.version !== version) return;
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

  /**
   * True when the message was taken (another instance's, or parked); false: handle it now.
   * `replayed`: a parked message coming back, already decided.
   */
  route(deviceId: string, topic: string, payload: Buffer, receivedAt: number, replayed: boolean, retained = false): boolean {
    const membership = this.cluster.membership;
    if (!replayed) {
      // Before the first members marker on this connection nobody here knows who owns what at this
      // point of the stream: the instances that do handle it.
      if (!this.ownership.known || membership.list.length === 0 || membership.ownerOf(deviceId) !== this.cluster.instanceId) {
        this.notOwned++;
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
    queue.push(() => this.dispatch(topic, payload, receivedAt, retained));
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

  /** Waits for the handoff, reads the stored seq of every parked device in one round trip, then replays them in order. */
  private async load(): Promise<void> {
    await this.ownership.handedOff();
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
