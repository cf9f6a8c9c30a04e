/** Largest a chunk grows before it is split in two; an insert or delete moves at most this many ids. */
const MAX_CHUNK = 2048;
/** A chunk this small after a delete is merged into its neighbour. */
const MIN_CHUNK = 256;

/**
 * Device ids in sorted order, so that pages walk the fleet by a cursor that is the last id seen:
 * the same order on every instance and after a restart, and a device present during the whole
 * walk is listed exactly once. The ids sit in sorted chunks of at most MAX_CHUNK: adding a device
 * costs two binary searches and a short splice (microseconds at a million devices), and a page
 * after any id costs O(log n + page). Known devices never touch it.
 */
export class SortedIds {
  private chunks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds an id that is not present. */
  add(id: string): void {
    this.count++;
    if (this.chunks.length === 0) {
      this.chunks.push([id]);
      return;
    }
    const c = this.chunkAtOrAfter(id, false);
    const chunk = this.chunks[c]!;
    chunk.splice(boundOf(chunk, id, false), 0, id);
    if (chunk.length > MAX_CHUNK) this.chunks.splice(c, 1, chunk.slice(0, MAX_CHUNK / 2), chunk.slice(MAX_CHUNK / 2));
  }

  delete(id: string): boolean {
    if (this.chunks.length === 0) return false;
    const c = this.chunkAtOrAfter(id, false);
    const chunk = this.chunks[c]!;
    const i = boundOf(chunk, id, false);
    if (chunk[i] !== id) return false;
    chunk.splice(i, 1);
    this.count--;
    const next = this.chunks[c + 1];
    if (chunk.length === 0) this.chunks.splice(c, 1);
    else if (chunk.length < MIN_CHUNK && next !== undefined && chunk.length + next.length <= MAX_CHUNK) {
      this.chunks.splice(c, 2, chunk.concat(next));
    }
    return true;
  }

  /** The ids after `after` in order ('' starts at the first). */
  *after(after: string): Generator<string, void, undefined> {
    if (this.chunks.length === 0) return;
    const first = this.chunkAtOrAfter(after, true);
    for (let c = first; c < this.chunks.length; c++) {
      const chunk = this.chunks[c]!;
      for (let i = c === first ? boundOf(chunk, after, true) : 0; i < chunk.length; i++) yield chunk[i]!;
    }
  }

  /** The ids from position `offset` on (whole chunks are skipped by their length). */
  *fromOffset(offset: number): Generator<string, void, undefined> {
    let skip = offset;
    for (const chunk of this.chunks) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      for (let i = skip; i < chunk.length; i++) yield chunk[i]!;
      skip = 0;
    }
  }

  /** The first chunk whose last id is >= id (> id when `strictly`), or the last chunk. */
  private chunkAtOrAfter(id: string, strictly: boolean): number {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const last = this.chunks[mid]!.at(-1)!;
      if (strictly ? last > id : last >= id) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/** The first index whose id is past `id` (`after`: strictly past it; else at or past it), by binary search. */
function boundOf(chunk: readonly string[], id: string, after: boolean): number {
  let lo = 0;
  let hi = chunk.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (after ? chunk[mid]! <= id : chunk[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
