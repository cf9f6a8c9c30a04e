import { InternalFault } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Membership } from './membership.js';
import type { InstanceContext } from './instance-context.js';
import type { ClusterPort } from './owner-api/index.js';

export interface ClusterOptions extends InstanceContext {
  readonly rpcTimeoutMs?: number;
}

/** Answers a named question about a device this instance holds (the owner API's answering side); the answer is a string (JSON). */
export type QueryHandler = (op: string, deviceId: string, body: unknown) => Promise<string | null>;

interface RpcMessage {
  op: string;
  id: number;
  from?: string;
  device?: string;
  body?: unknown;
  answer?: string | null;
  /** Set in a reply when the handler failed: the asker reports an internal error, not "unavailable". */
  error?: 'internal';
}

/** What a pending request is settled with: an answer (null: none in time) or the owner's fault. */
type Settle = (answer: string | null | InternalFault) => void;

/**
 * What hub instances say to each other besides frames: requests only a device's owner can answer
 * (its snapshot, a command to send and track, an HTTP ingest), one channel per instance. The
 * requests themselves, typed and checked, are the owner API's (src/cluster/owner-api).
 */
export class Cluster implements ClusterPort {
  private readonly rpcPrefix: string;
  private readonly pending = new Map<number, Settle>();
  private nextRpc = 0;
  private answerQuery: QueryHandler | null = null;

  constructor(private readonly opts: ClusterOptions) {
    this.rpcPrefix = `${opts.keyPrefix}cluster:rpc:`;
  }

  get instanceId(): string {
    return this.opts.instanceId;
  }

  get membership(): Membership {
    return this.opts.membership;
  }

  get log(): Logger {
    return this.opts.log;
  }

  owns(deviceId: string): boolean {
    return this.opts.membership.owns(deviceId);
  }

  ownerOf(deviceId: string): string {
    return this.opts.membership.ownerOf(deviceId);
  }

  /** Asks the owner of `deviceId` (see ask). */
  askOwner(op: string, deviceId: string, body: unknown): Promise<string | null> {
    return this.ask(this.opts.membership.ownerOf(deviceId), op, deviceId, body);
  }

  /** `answer`: what this instance says when asked about the devices it holds (the owner API's answering side). */
  async start(answer: QueryHandler): Promise<void> {
    this.answerQuery = answer;
    this.opts.bus.route(this.rpcPrefix, 'cluster', (_self, message) => this.onRpc(message));
    await this.opts.bus.subscribe(this.rpcPrefix + this.opts.instanceId);
  }

  /**
   * Asks a device's owner (`op` with `body`); null when it does not answer in time. Rejects with an
   * InternalFault when the owner's handler failed (it logged and counted the fault).
   */
  ask(owner: string, op: string, deviceId: string, body?: unknown): Promise<string | null> {
    const id = ++this.nextRpc;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.opts.metrics.clusterRpcTimeouts.inc();
        resolve(null);
      }, this.opts.rpcTimeoutMs ?? 1000);
      this.pending.set(id, (answer) => {
        clearTimeout(timer);
        if (answer instanceof InternalFault) reject(answer);
        else resolve(answer);
      });
      const request: RpcMessage = { op, id, from: this.opts.instanceId, device: deviceId, body };
      this.opts.bus.publish(this.rpcPrefix + owner, JSON.stringify(request)).then(
        (receivers) => receivers === 0 && this.pending.get(id)?.(null),
        () => this.pending.get(id)?.(null),
      );
    }).finally(() => this.pending.delete(id)) as Promise<string | null>;
  }

  /** Asks every live instance (this one too, through Redis like the others); null where one did not answer. */
  askAll(op: string, body?: unknown): Promise<(string | null)[]> {
    return Promise.all(this.opts.membership.list.map((member) => this.ask(member, op, '*', body)));
  }

  /** Per-device seqs as stored by the fan-out (null: never numbered). */
  async storedSeqs(deviceIds: readonly string[]): Promise<(number | null)[]> {
    const values = await this.opts.bus.commands.hmget(`${this.opts.keyPrefix}fanout:seq`, ...deviceIds);
    return values.map((v) => (v === null ? null : Number(v)));
  }

  private onRpc(message: Buffer): void {
    let body: RpcMessage;
    try {
      body = JSON.parse(message.toString('utf8')) as RpcMessage;
    } catch {
      return;
    }
    if (typeof body !== 'object' || body === null) return;
    if (body.op === 'reply') {
      const settle = this.pending.get(body.id);
      if (settle === undefined) return;
      if (body.error === 'internal') settle(new InternalFault(`instance answering a cluster request failed (internal error)`));
      else settle(typeof body.answer === 'string' ? body.answer : null);
      return;
    }
    const handler = this.answerQuery;
    if (handler === null || typeof body.from !== 'string' || typeof body.device !== 'string' || typeof body.op !== 'string') return;
    const { op, from, device } = body;
    Promise.resolve()
      .then(() => handler(op, device, body.body))
      .then(
        (answer): RpcMessage => ({ op: 'reply', id: body.id, answer }),
        (error: unknown): RpcMessage => {
          this.opts.faults.report('cluster', error, { op, from });
          return { op: 'reply', id: body.id, error: 'internal' };
        },
      )
      .then((reply) => this.opts.bus.publish(this.rpcPrefix + from, JSON.stringify(reply)))
      .catch(this.opts.faults.catcher('cluster', { op: 'reply', to: from }));
  }
}
