/**
 * Carries frames to the WebSocket clients that follow a device (or everything, for
 * `subscribe_all`). `local` delivers in-process; `redis` also carries frames between hub instances
 * (pub/sub per device channel, subscribed only while this instance has followers) and drops its
 * own echo. Both keep a time window of history per followed device, and of the fleet feed, so a
 * reconnecting client can resume (tests/contracts/fanout.contract.ts holds both to the same rules).
 *
 * Every frame `toAll` carries gets the next `fleet_seq` (one numbering per epoch, cluster-wide in
 * cluster mode), spliced into its text by `withFleetSeq`.
 *
 * `key` names what a frame supersedes for a lagging client (conflation): a newer frame with the
 * same key replaces an older one that has not been sent yet.
 */
export interface Fanout {
  readonly kind: 'local' | 'redis';
  /** Names the numbering of `seq`: a client's `since_seq` only means something within one epoch. */
  readonly epoch: string;
  /**
   * Starts delivery to this process's clients; `onFenced` hears of frames Redis refused because
   * another instance numbered their device further (ownership moved; cluster mode only).
   */
  start(local: LocalDelivery, onFenced?: FencedListener): Promise<void>;
  toDevice(deviceId: string, seq: number, frame: string, key: string): void;
  /**
   * False when a frame on this channel (device id or `*`) would go nowhere (no follower, no history
   * kept): the hub then skips building it. Its seq is still spent, so numbering stays the same.
   */
  wants(channel: string): boolean;
  toAll(frame: string, key: string): void;
  /** A local client follows a channel (device id or `*`); resolves once frames from every instance arrive. */
  follow(channel: string): Promise<void>;
  unfollow(channel: string): void;
  /** The device's frames after `sinceSeq`, if every one of them is still kept. */
  recover(deviceId: string, sinceSeq: number, currentSeq: number): Recovery | Promise<Recovery>;
  /**
   * The fleet feed's last `fleet_seq` already handed to this process's clients (once frames of
   * every instance reach `*` here, when followed) and, with `sinceFleetSeq`, the frames after it
   * (null when any is gone). Synchronous on a single instance.
   */
  recoverFleet(sinceFleetSeq: number | null): FleetRecovery | Promise<FleetRecovery>;
  /**
   * Resolves once every frame handed to the fan-out so far has reached this process's clients
   * (Redis: they are delivered here only once Redis stored them); null when that is already so.
   */
  settled(): Promise<void> | null;
  stop(): Promise<void>;
}

export interface FleetRecovery {
  readonly fleetSeq: number;
  readonly frames: readonly string[] | null;
}

export type Recovery = { readonly recovered: true; readonly seq: number; readonly frames: readonly string[] } | { readonly recovered: false };

/** Another instance numbered this device past `storedSeq`: the frame was not stored or delivered. */
export type FencedListener = (deviceId: string, storedSeq: number) => void;

/** Delivery to the clients connected to this process (implemented by the WebSocket server). */
export interface LocalDelivery {
  toDevice(deviceId: string, frame: string, key: string): void;
  toAll(frame: string, key: string): void;
}

/**
 * The frame with `"fleet_seq":N` after its first field (`{"type":"…"` has no comma in it). The
 * Redis script splices the same way, so every instance sends the same text.
 */
export function withFleetSeq(frame: string, fleetSeq: number): string {
  const comma = frame.indexOf(',');
  return comma === -1 ? frame : `${frame.slice(0, comma)},"fleet_seq":${fleetSeq}${frame.slice(comma)}`;
}

/** The fleet_seq of a `*` frame (0 when it has none). */
export function fleetSeqOf(frame: string): number {
  const at = frame.indexOf('"fleet_seq":');
  return at === -1 ? 0 : Number.parseInt(frame.slice(at + 12, at + 32), 10);
}

/** The seq of a frame (`"seq":N`), for frames whose number was not passed along. */
export function seqOf(frame: string): number {
  const at = frame.indexOf('"seq":');
  return at === -1 ? 0 : Number.parseInt(frame.slice(at + 6, at + 26), 10);
}
