/** What the hub needs of a cluster (src/cluster): who owns a device, and a way to ask instances. */
export interface ClusterPort {
  owns(deviceId: string): boolean;
  ownerOf(deviceId: string): string;
  /** Runs a named query on a device's owner (null: no answer). */
  askOwner(op: string, deviceId: string, body: unknown): Promise<string | null>;
  /** Runs a named query on every live instance, this one included (null where one did not answer). */
  askAll(op: string, body: unknown): Promise<(string | null)[]>;
}

/** What a device's owner answers; `ok: false` when it could not be asked (owner gone, Redis away). */
export type OwnerAnswer<T> = { readonly ok: true; readonly value: T } | { readonly ok: false };

export type OwnerQuery = (deviceId: string, body: unknown) => unknown;

/**
 * Questions only the instance holding a device's state can answer (its snapshot, health, metrics,
 * an alert, a command to send): each is defined once by name, and `ask` runs it here or on the
 * owner with the same code. Without a cluster everything runs here.
 */
export class OwnerQueries {
  private readonly queries = new Map<string, OwnerQuery>();

  constructor(private readonly cluster: ClusterPort | undefined) {}

  define(op: string, query: OwnerQuery): void {
    this.queries.set(op, query);
  }

  isLocal(deviceId: string): boolean {
    return this.cluster === undefined || this.cluster.owns(deviceId);
  }

  async ask<T>(op: string, deviceId: string, body?: unknown): Promise<OwnerAnswer<T>> {
    if (this.cluster === undefined || this.cluster.owns(deviceId)) return { ok: true, value: (await this.queries.get(op)!(deviceId, body)) as T };
    const answer = await this.cluster.askOwner(op, deviceId, body);
    return answer === null ? { ok: false } : (JSON.parse(answer) as OwnerAnswer<T>);
  }

  /** Every instance's answer (one, here, without a cluster); instances that did not answer are counted. */
  async everyone<T>(op: string, body?: unknown): Promise<{ answers: T[]; missing: number }> {
    if (this.cluster === undefined) return { answers: [(await this.queries.get(op)!('*', body)) as T], missing: 0 };
    const answers = await this.cluster.askAll(op, body);
    const ok = answers.filter((a): a is string => a !== null).map((a) => JSON.parse(a) as OwnerAnswer<T>);
    const values = ok.flatMap((a) => (a.ok ? [a.value] : []));
    return { answers: values, missing: answers.length - values.length };
  }

  /** The answering side, for the cluster's request channel. */
  async answer(op: string, deviceId: string, body: unknown): Promise<string | null> {
    const query = this.queries.get(op);
    if (query === undefined) return null;
    return JSON.stringify({ ok: true, value: (await query(deviceId, body)) ?? null });
  }

  /** Ids split into those held here and groups by the instance that holds them. */
  byOwner(ids: readonly string[]): { local: string[]; remote: string[][] } {
    const local: string[] = [];
    const remote = new Map<string, string[]>();
    for (const id of ids) {
      if (this.isLocal(id)) local.push(id);
      else {
        const owner = this.cluster!.ownerOf(id);
        const group = remote.get(owner);
        if (group) group.push(id);
        else remote.set(owner, [id]);
      }
    }
    return { local, remote: [...remote.values()] };
  }
}
