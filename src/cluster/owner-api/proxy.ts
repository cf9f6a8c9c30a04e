import type { z } from 'zod';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../metrics.js';
import { OPERATIONS, type AnswerOf, type FleetAnswers, type FleetOperation, type OperationName, type OwnerAnswer, type OwnerOperation, type RequestOf } from './operations.js';
import type { OwnerServices } from './services.js';
import { deviceKey } from './shapes.js';
import { TypedOwnerCalls } from './typed-calls.js';

/** What the owner API needs of a cluster (src/cluster/cluster.ts): who owns a device, and a way to ask instances. */
export interface ClusterPort {
  owns(deviceId: string): boolean;
  ownerOf(deviceId: string): string;
  /** Runs an operation (by its wire name) on a device's owner; null: no answer in time. */
  askOwner(op: string, deviceId: string, body: unknown): Promise<string | null>;
  /** Runs an operation on every live instance, this one included (null where one did not answer). */
  askAll(op: string, body: unknown): Promise<(string | null)[]>;
  /** Where refused calls are logged. */
  readonly log: Logger;
}

const BY_WIRE = new Map<string, OperationName>(Object.entries(OPERATIONS).map(([name, op]) => [op.wire, name as OperationName]));
/** A refused call is logged at most this often per operation and side (each is counted). */
const REFUSAL_LOG_MS = 60_000;

/** What travels back: the answer, or why the owner refused the request (old instances send only `ok: false`). */
type Reply = { ok: true; value: unknown } | { ok: false; error?: string; detail?: string };

/** The first problems of a refused body, as `path: message`. */
const problems = (error: z.ZodError): string =>
  error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
    .join('; ');

/**
 * The owner API in a cluster: a call about a device this instance owns runs here, unserialised;
 * any other goes over the cluster bus as JSON, by its wire name. The answering side (`answer`,
 * Cluster.start's handler) checks the request against the operation's schema before any service
 * sees it; the asking side checks the answer. Either refusal is counted and logged (rate-limited),
 * answers as "did not answer" (the callers' owner_unavailable or partial answer), and never throws.
 */
export class ClusterOwnerApi extends TypedOwnerCalls {
  private readonly refusalLogged = new Map<string, number>();

  constructor(
    services: OwnerServices,
    private readonly cluster: ClusterPort,
    private readonly metrics: Metrics,
    private readonly now: () => number = Date.now,
  ) {
    super(services);
  }

  isLocal(deviceId: string): boolean {
    return this.cluster.owns(deviceId);
  }

  byOwner(ids: readonly string[]): { local: string[]; remote: string[][] } {
    const local: string[] = [];
    const remote = new Map<string, string[]>();
    for (const id of ids) {
      if (this.cluster.owns(id)) local.push(id);
      else {
        const owner = this.cluster.ownerOf(id);
        const group = remote.get(owner);
        if (group) group.push(id);
        else remote.set(owner, [id]);
      }
    }
    return { local, remote: [...remote.values()] };
  }

  /** The answering side: what this instance says when another asks `wire` about `deviceId`; null: no such operation. */
  async answer(wire: string, deviceId: string, body: unknown): Promise<string | null> {
    const op = BY_WIRE.get(wire);
    if (op === undefined) return null;
    const key = deviceKey.safeParse(deviceId);
    const request = OPERATIONS[op].request.safeParse(body);
    if (!key.success || !request.success) {
      const detail = key.success ? problems(request.error!) : `device: ${problems(key.error)}`;
      this.refused(op, 'request', detail);
      return JSON.stringify({ ok: false, error: 'invalid_request', detail } satisfies Reply);
    }
    const value = await this.services.run(op, deviceId, request.data as RequestOf<typeof op>);
    return JSON.stringify({ ok: true, value: value ?? null } satisfies Reply);
  }

  protected async toOwner<K extends OwnerOperation>(op: K, deviceId: string, body: RequestOf<K>): Promise<OwnerAnswer<AnswerOf<K>>> {
    if (this.cluster.owns(deviceId)) return { ok: true, value: await this.services.run(op, deviceId, body) };
    return this.read(op, await this.cluster.askOwner(OPERATIONS[op].wire, deviceId, body));
  }

  protected async toAll<K extends FleetOperation>(op: K, body: RequestOf<K>): Promise<FleetAnswers<AnswerOf<K>>> {
    const replies = await this.cluster.askAll(OPERATIONS[op].wire, body);
    const answers: AnswerOf<K>[] = [];
    for (const reply of replies) {
      const read = this.read(op, reply);
      if (read.ok) answers.push(read.value);
    }
    return { answers, missing: replies.length - answers.length };
  }

  /** An instance's reply, checked against the operation's answer schema. */
  private read<K extends OperationName>(op: K, reply: string | null): OwnerAnswer<AnswerOf<K>> {
    if (reply === null) return { ok: false };
    let parsed: Reply;
    try {
      parsed = JSON.parse(reply) as Reply;
    } catch {
      this.refused(op, 'answer', 'not JSON');
      return { ok: false };
    }
    if (typeof parsed !== 'object' || parsed === null || parsed.ok !== true) {
      // The owner refused the request (it counted and logged why) or could not be asked.
      return { ok: false };
    }
    const checked = OPERATIONS[op].answer.safeParse(parsed.value);
    if (!checked.success) {
      this.refused(op, 'answer', problems(checked.error));
      return { ok: false };
    }
    return { ok: true, value: checked.data as AnswerOf<K> };
  }

  private refused(op: OperationName, side: 'request' | 'answer', detail: string): void {
    this.metrics.clusterInvalidCalls.inc({ op: OPERATIONS[op].wire, side });
    const key = `${op}:${side}`;
    const at = this.now();
    const last = this.refusalLogged.get(key);
    if (last !== undefined && at - last < REFUSAL_LOG_MS) return;
    this.refusalLogged.set(key, at);
    const what = side === 'request' ? 'a request from another instance' : 'an answer from another instance';
    this.cluster.log.warn({ op: OPERATIONS[op].wire, side, detail }, `owner API: ${what} does not match its schema; refused (counted in vigil_cluster_invalid_calls_total, logged at most once a minute)`);
  }
}
