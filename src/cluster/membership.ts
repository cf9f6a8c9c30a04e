import type { Redis } from 'ioredis';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import { ownerOf } from './rendezvous.js';

export interface MembershipOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly instanceId: string;
  readonly heartbeatMs: number;
  /** A member that has not renewed within this is gone. */
  readonly leaseMs: number;
  readonly log: Logger;
  readonly faults: Faults;
}

/**
 * The live hub instances, as a Redis sorted set scored by lease expiry. Each instance renews its
 * lease every heartbeat and reads the set; devices are owned by rendezvous hashing over it.
 * `version` changes whenever the member list does, so owners know to re-read per-device state.
 */
export class Membership {
  private members: string[];
  private timer: NodeJS.Timeout | null = null;
  private changeListeners: (() => void)[] = [];
  version = 0;
  /** Set once a list arrived through the MQTT stream (StreamOwnership): from then on only the stream changes it. */
  private fromStream = false;

  constructor(private readonly opts: MembershipOptions) {
    this.members = [opts.instanceId];
  }

  get key(): string {
    return `${this.opts.keyPrefix}cluster:members`;
  }

  get list(): readonly string[] {
    return this.members;
  }

  /** The owner in the list in force; this instance when the list is empty (it is leaving, or alone). */
  ownerOf(deviceId: string): string {
    return this.members.length === 1 ? this.members[0]! : (ownerOf(deviceId, this.members) ?? this.opts.instanceId);
  }

  owns(deviceId: string): boolean {
    return this.ownerOf(deviceId) === this.opts.instanceId;
  }

  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  async start(): Promise<void> {
    await this.beat();
    // A missed beat (Redis away) is reported; the lease outlives a few of them, the next beat retries.
    this.timer = setInterval(this.opts.faults.guard('membership', () => this.beat()), this.opts.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.opts.redis.zrem(this.key, this.opts.instanceId).catch(this.opts.faults.catcher('membership', { op: 'leave' }));
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    const result = await this.opts.redis
      .multi()
      .zadd(this.key, now + this.opts.leaseMs, this.opts.instanceId)
      .zremrangebyscore(this.key, '-inf', now)
      .zrange(this.key, 0, -1)
      .exec();
    const listed = result?.[2]?.[1];
    // Until the stream names the list in force (startup), the lease holders stand in for it.
    if (Array.isArray(listed) && !this.fromStream) this.applyListed((listed as string[]).slice().sort());
  }

  /** The list in force, as a members marker in the MQTT stream named it (exactly: self may be absent). */
  apply(next: readonly string[]): void {
    this.fromStream = true;
    this.applyListed([...next]);
  }

  private applyListed(next: string[]): void {
    if (!this.fromStream && !next.includes(this.opts.instanceId)) next = [...next, this.opts.instanceId].sort();
    if (next.length === this.members.length && next.every((m, i) => m === this.members[i])) return;
    this.opts.log.info({ members: next }, 'cluster membership changed');
    this.members = next;
    this.version++;
    for (const listener of this.changeListeners) listener();
  }
}
