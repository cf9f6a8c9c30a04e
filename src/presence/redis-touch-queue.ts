/** At most this many devices' touches go into one script call (three arguments each). */
export const FLUSH_BATCH = 2000;

interface PendingTouch {
  lastSeen: number;
  deadline: number;
}

/** Sends one batch: `now`, then (id, lastSeen, deadline) triples, to the touch script. */
export type SendTouches = (args: (string | number)[]) => Promise<unknown>;

/**
 * The touches a Redis presence store has yet to write, coalesced, and the deadline last written per
 * device. A touch whose true deadline is not past the one written needs no round trip; the deadline
 * written is the true one plus a slack of min(`maxSlackMs`, timeout / 4), so a device is reported
 * offline at most slack + the sweep interval after its true deadline, never before it. The store
 * passes the sweep interval as `maxSlackMs` (250 ms by default): offline at most two sweep intervals
 * late, while a device sending ten messages a second still costs about four writes a second. (A fixed
 * 500 ms slack put a fleet-wide wave of expiries at 500–750 ms after the deadline before any
 * processing, and one device in ten past a second at 100,000 devices: #21.)
 *
 * A flush sends at most FLUSH_BATCH devices in one call, one call at a time, and drains a backlog
 * (a reconcile touches the whole fleet at once) by chaining the next call when one succeeds. A call
 * that fails puts its touches back and is NOT followed at once by another: while Redis is away
 * ioredis (no offline queue) rejects a command before any I/O, so chaining on failure would build
 * and reject commands in an endless microtask loop that starves the event loop — the hub never
 * listened, ignored SIGTERM and spun inside ioredis's command construction (#21). After a failure the
 * next flush comes from the caller's flush interval, and touches start none until one succeeds (each
 * would build a command of FLUSH_BATCH devices only to have it rejected, once per message).
 */
export class TouchQueue {
  /** The deadline last written to Redis per device (coalescing). */
  private readonly written = new Map<string, number>();
  private readonly pending = new Map<string, PendingTouch>();
  private flushing = false;
  /** The last call failed: touches stop starting flushes (each would be rejected) until one succeeds. */
  private failed = false;

  constructor(
    private readonly send: SendTouches,
    private readonly onSuccess: () => void,
    private readonly onFailure: (error: Error) => void,
    private readonly onFault: (error: unknown) => void,
    private readonly now: () => number = Date.now,
    private readonly maxSlackMs = 250,
  ) {}

  get trackedDevices(): number {
    return this.written.size;
  }

  get pendingDevices(): number {
    return this.pending.size;
  }

  touch(deviceId: string, at: number, timeoutMs: number): void {
    const deadline = at + timeoutMs;
    const writtenDeadline = this.written.get(deviceId);
    if (writtenDeadline !== undefined && deadline <= writtenDeadline) return;
    const stored = deadline + Math.min(this.maxSlackMs, timeoutMs / 4);
    this.written.set(deviceId, stored);
    const existing = this.pending.get(deviceId);
    if (existing !== undefined) {
      existing.lastSeen = Math.max(existing.lastSeen, at);
      existing.deadline = Math.max(existing.deadline, stored);
    } else this.pending.set(deviceId, { lastSeen: at, deadline: stored });
    if (this.pending.size >= FLUSH_BATCH && !this.failed) this.flush().catch(this.onFault);
  }

  /** The device's written deadline no longer holds (it went offline, or Redis reported it). */
  forgetWritten(deviceId: string): void {
    this.written.delete(deviceId);
  }

  /** The device went offline here: nothing of it is to be written. */
  drop(deviceId: string): void {
    this.written.delete(deviceId);
    this.pending.delete(deviceId);
  }

  /** Redis may have restarted empty: every later touch is written again. */
  forgetAllWritten(): void {
    this.written.clear();
  }

  /** Writes up to FLUSH_BATCH pending touches; on success chains the next batch if enough are waiting. */
  async flush(): Promise<void> {
    if (this.flushing || this.pending.size === 0) return;
    this.flushing = true;
    const batch: [string, PendingTouch][] = [];
    for (const entry of this.pending) {
      batch.push(entry);
      if (batch.length >= FLUSH_BATCH) break;
    }
    const args: (string | number)[] = [this.now()];
    for (const [id, t] of batch) {
      this.pending.delete(id);
      args.push(id, t.lastSeen, t.deadline);
    }
    let sent = false;
    try {
      await this.send(args);
      sent = true;
      this.failed = false;
      this.onSuccess();
    } catch (error) {
      // Put them back unless a newer touch arrived meanwhile; forget what we believed was written.
      for (const [id, t] of batch) {
        if (!this.pending.has(id)) this.pending.set(id, t);
        this.written.delete(id);
      }
      this.failed = true;
      this.onFailure(error as Error);
    } finally {
      this.flushing = false;
    }
    if (sent && this.pending.size >= FLUSH_BATCH) this.flush().catch(this.onFault);
  }
}
