import { randomBytes } from 'node:crypto';
import type { InstanceContext } from './instance-context.js';

/** How this component reaches the broker: the ingest's own client, on the hub-only control topic. */
export interface ControlPublisher {
  publishControl(payload: string): void;
}

export interface StreamOwnershipOptions extends InstanceContext {
  /** How often the live members are read from Redis (a SIGKILLed instance is noticed within this). */
  readonly probeMs: number;
  /** Longest a new owner holds a moved device's messages waiting for the previous owner's handoff. */
  readonly handoffTimeoutMs: number;
}

interface Marker {
  readonly id: string;
  readonly members: string[];
}

const MARKER_KIND = 'vigil-members';
/** CLUSTER_INSTANCE_ID's pattern (src/config.ts). */
const INSTANCE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_MEMBERS = 1000;
/** Handoffs remembered per marker id; markers are rare (membership changes), so a few suffice. */
const HANDOFF_MEMORY = 32;
/** A proposal not seen back in this long is sent again (lost, or overtaken by another). */
const REPROPOSE_MS = 1000;

/**
 * Who owns a device, decided at the same point of the MQTT stream on every instance.
 *
 * Every instance subscribes to every device topic (no shared subscription), so each receives the
 * same messages in the same order from the broker. A member list changes only when a marker naming
 * the new list passes through that stream (published by an instance to the hub-only control topic),
 * so every instance switches at the same message: each message is handled by exactly one instance,
 * the one its device's owner was at that point of the stream, and a device's messages keep the
 * order the broker received them in. The previous owner announces (on Redis, after writing the
 * frames it numbered) that it has handled everything before the marker; the new owner holds a moved
 * device's messages until then, so numbering and pushes continue in order (docs/scaling.md).
 *
 * Members are proposed from Redis: the instances whose lease is valid and whose `live:<id>` channel
 * has a subscriber, which each instance holds only while its broker subscription is up (a killed
 * process's connection closes at once, so its channel empties within a probe).
 */
export class StreamOwnership {
  private publisher: ControlPublisher | null = null;
  private applied: readonly string[] | null = null;
  private appliedMarker = '';
  private subscribed = false;
  private proposed = '';
  private proposedAt = 0;
  private nextMarker = 0;
  private readonly nonce = randomBytes(6).toString('base64url');
  private readonly handoffs = new Map<string, Set<string>>();
  private readonly handoffWaiters: (() => void)[] = [];
  private awaiting: { marker: string; from: Set<string>; ready: Promise<void> } | null = null;
  /** Null until the first probe: until then every member counts as live. */
  private liveNow: Set<string> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private leaving = false;
  private readonly livePrefix: string;
  private readonly handoffChannel: string;

  constructor(private readonly opts: StreamOwnershipOptions) {
    this.livePrefix = `${opts.keyPrefix}cluster:live:`;
    this.handoffChannel = `${opts.keyPrefix}cluster:handoff`;
  }

  /** Listens for handoffs and starts probing the live members. */
  async start(publisher: ControlPublisher): Promise<void> {
    this.publisher = publisher;
    this.opts.bus.route(this.handoffChannel, 'cluster', (_suffix, message) => this.onHandoff(message.toString('utf8')));
    await this.opts.bus.subscribe(this.handoffChannel);
    this.timer = setInterval(this.opts.faults.guard('membership', () => this.probe()), this.opts.probeMs);
    this.timer.unref();
  }

  /** True once this instance knows the member list in force at this point of its stream. */
  get known(): boolean {
    return this.applied !== null;
  }

  /**
   * The broker subscription is up (every connection: a clean session, so nothing before it is
   * delivered): the list in force is unknown until the next marker, which this instance proposes.
   */
  onSubscribed(): void {
    this.subscribed = true;
    this.applied = null;
    this.proposed = '';
    this.opts.bus.subscribe(this.livePrefix + this.opts.instanceId).then(
      () => this.probe(),
      this.opts.faults.catcher('membership', { op: 'live' }),
    ).catch(this.opts.faults.catcher('membership', { op: 'probe' }));
  }

  /** The broker connection dropped: messages are missed, so others take this instance's devices. */
  onDisconnected(): void {
    if (!this.subscribed) return;
    this.subscribed = false;
    this.applied = null;
    this.opts.bus.unsubscribe(this.livePrefix + this.opts.instanceId);
  }

  /** A message on the control topic that is not the backlog marker: true when it was a members marker. */
  take(payload: Buffer): boolean {
    if (payload[0] !== 0x7b) return false; // '{'
    let body: { kind?: unknown; id?: unknown; members?: unknown };
    try {
      body = JSON.parse(payload.toString('utf8')) as typeof body;
    } catch {
      return false;
    }
    if (body.kind !== MARKER_KIND || typeof body.id !== 'string' || !Array.isArray(body.members)) return false;
    // Only hubs may write the control topic (deploy/mosquitto/acl.example); still, a malformed
    // marker is dropped whole rather than applied in part.
    const members = body.members;
    if (members.length > MAX_MEMBERS || !members.every((m): m is string => typeof m === 'string' && INSTANCE_ID.test(m)) || body.id.length > 200) {
      this.opts.metrics.clusterMarkers.inc({ direction: 'invalid' });
      return true;
    }
    this.apply({ id: body.id, members: [...new Set(members)].sort() });
    return true;
  }

  /**
   * Resolves once every other member that may have handled this instance's new devices before the
   * marker in force says it has (or is gone, or `handoffTimeoutMs` passed).
   */
  handedOff(): Promise<void> {
    return this.awaiting?.ready ?? Promise.resolve();
  }

  /**
   * Graceful stop: leave the list through the stream, so the others take this instance's devices at
   * a marker and it hands them over, instead of them going unhandled until its lease ends.
   */
  async leave(timeoutMs: number): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.leaving = true;
    await this.opts.membership.stop();
    if (!this.subscribed || this.applied === null || !this.applied.includes(this.opts.instanceId)) return;
    const id = this.propose(this.applied.filter((m) => m !== this.opts.instanceId));
    const deadline = Date.now() + timeoutMs;
    while (this.appliedMarker !== id && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // The handoff for it is published after this turn's frames; the barrier waits for it to be sent.
    await new Promise((r) => setImmediate(r));
    await this.opts.bus.commands.ping().catch(() => undefined);
    this.opts.bus.unsubscribe(this.livePrefix + this.opts.instanceId);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reads the live members and proposes them when they differ from the list in force. */
  private async probe(): Promise<void> {
    if (this.leaving || !this.subscribed || this.publisher === null) return;
    const listed = await this.opts.bus.commands.zrangebyscore(this.opts.membership.key, Date.now(), '+inf');
    if (listed.length === 0) return;
    const counts = (await this.opts.bus.commands.call('PUBSUB', 'NUMSUB', ...listed.map((m) => this.livePrefix + m))) as (string | number)[];
    const live = listed.filter((_m, i) => Number(counts[i * 2 + 1]) > 0).sort();
    this.liveNow = new Set(live);
    this.releaseIfDone();
    if (!this.subscribed || !live.includes(this.opts.instanceId)) return;
    const wanted = live.join(',');
    if (this.applied !== null && this.applied.join(',') === wanted) return;
    // One proposer per change, not one per instance: the first live member, or an instance that
    // does not know the list in force yet (it joined or reconnected).
    if (this.applied !== null && live[0] !== this.opts.instanceId) return;
    if (wanted === this.proposed && Date.now() - this.proposedAt < REPROPOSE_MS) return;
    this.propose(live);
  }

  private propose(members: readonly string[]): string {
    const id = `${this.opts.instanceId}/${this.nonce}/${++this.nextMarker}`;
    this.proposed = members.join(',');
    this.proposedAt = Date.now();
    this.opts.metrics.clusterMarkers.inc({ direction: 'out' });
    this.publisher?.publishControl(JSON.stringify({ kind: MARKER_KIND, id, members }));
    return id;
  }

  private apply(marker: Marker): void {
    this.opts.metrics.clusterMarkers.inc({ direction: 'in' });
    const previous = this.applied;
    this.applied = marker.members;
    this.appliedMarker = marker.id;
    const others = new Set([...(previous ?? []), ...marker.members]);
    others.delete(this.opts.instanceId);
    // What this instance numbered before the marker is written by the fan-out at the end of this
    // turn; the handoff follows it on the same Redis connection, so whoever reads it sees those seqs.
    setImmediate(() => {
      this.opts.bus.publish(this.handoffChannel, `${marker.id}|${this.opts.instanceId}`).catch(this.opts.faults.catcher('membership', { op: 'handoff' }));
    });
    let release!: () => void;
    const ready = new Promise<void>((resolve) => {
      release = resolve;
    });
    const timer = setTimeout(() => {
      this.opts.metrics.clusterHandoffTimeouts.inc();
      this.opts.log.warn({ marker: marker.id, waitingFor: [...(this.awaiting?.from ?? [])] }, 'cluster handoff not confirmed in time; numbering on');
      release();
    }, this.opts.handoffTimeoutMs);
    timer.unref();
    this.awaiting = { marker: marker.id, from: others, ready: ready.then(() => clearTimeout(timer)) };
    this.handoffWaiters.push(release);
    this.opts.membership.apply(marker.members);
    this.releaseIfDone();
  }

  private onHandoff(text: string): void {
    const bar = text.lastIndexOf('|');
    if (bar === -1) return;
    const marker = text.slice(0, bar);
    let from = this.handoffs.get(marker);
    if (from === undefined) {
      if (this.handoffs.size >= HANDOFF_MEMORY) this.handoffs.delete(this.handoffs.keys().next().value!);
      this.handoffs.set(marker, (from = new Set()));
    }
    from.add(text.slice(bar + 1));
    this.releaseIfDone();
  }

  /** Releases the new owner's held messages once every awaited member handed off or is no longer live. */
  private releaseIfDone(): void {
    const awaiting = this.awaiting;
    if (awaiting === null || this.handoffWaiters.length === 0) return;
    const done = this.handoffs.get(awaiting.marker);
    for (const member of awaiting.from) {
      if (done?.has(member) !== true && (this.liveNow === null || this.liveNow.has(member))) return;
    }
    for (const release of this.handoffWaiters.splice(0)) release();
  }
}
