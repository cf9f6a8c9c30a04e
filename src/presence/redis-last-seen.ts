/** Keys per MGET: a reply of this many values is small, and one call never grows with the fleet. */
export const LAST_SEEN_BATCH = 1000;
/** MGETs in flight at once (pipelined on the one connection): round trips overlap, memory stays bounded. */
export const LAST_SEEN_IN_FLIGHT = 4;

export type MultiGet = (keys: string[]) => Promise<(string | null)[]>;

/**
 * Last-seen times of `deviceIds` (their presence keys `prefix + id`), in order, null where a device
 * has no key: in MGETs of at most LAST_SEEN_BATCH keys, LAST_SEEN_IN_FLIGHT at a time. The reconcile
 * asks this for every device recorded online — the whole fleet after a restart — so no single call
 * may carry all of them.
 */
export async function lastSeenInChunks(deviceIds: readonly string[], prefix: string, mget: MultiGet): Promise<(number | null)[]> {
  const out = new Array<number | null>(deviceIds.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < deviceIds.length) {
      const from = next;
      const to = Math.min(from + LAST_SEEN_BATCH, deviceIds.length);
      next = to;
      const keys = new Array<string>(to - from);
      for (let i = from; i < to; i++) keys[i - from] = prefix + deviceIds[i]!;
      const values = await mget(keys);
      for (let i = from; i < to; i++) {
        const v = values[i - from];
        out[i] = v === null || v === undefined ? null : Number(v);
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < LAST_SEEN_IN_FLIGHT && w * LAST_SEEN_BATCH < deviceIds.length; w++) workers.push(worker());
  await Promise.all(workers);
  return out;
}
