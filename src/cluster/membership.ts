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

  constructor(private readonly opts: MembershipOptions) {
    this.members = [opts.instanceId];
  }

  get key(): string {
    return `${this.opts.keyPrefix}cluster:members`;
  }

  get list(): readonly string[] {
    return this.members;
  }

  ownerOf(deviceId: string): string {
    return this.members.length === 1 ? this.members[0]! : ownerOf(deviceId, this.members)!;
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

  /** Another instance stopped answering (its channel has no subscriber): drop it now, not at lease end. */
  async evict(member: string): Promise<void> {
    if (member === this.opts.instanceId || !this.members.includes(member)) return;
    this.opts.log.warn({ member }, 'cluster member unreachable; taking over its devices');
    this.apply(this.members.filter((m) => m !== member));
    await this.opts.redis.zrem(this.key, member);
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
    if (Array.isArray(listed)) this.apply((listed as string[]).slice().sort());
  }

  private apply(next: string[]): void {
    if (!next.includes(this.opts.instanceId)) next = [...next, this.opts.instanceId].sort();
    if (next.length === this.members.length && next.every((m, i) => m === this.members[i])) return;
    this.opts.log.info({ members: next }, 'cluster membership changed');
    this.members = next;
    this.version++;
    for (const listener of this.changeListeners) listener();
  }
}
