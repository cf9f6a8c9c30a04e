import type { StatusChange } from '../domain/device-status.js';

/** At most this many changes go into one claim script call (five arguments each). */
export const CLAIM_CALL_BATCH = 1000;

/** Sends one batch: (id, status, reason, at, lastSeen) quintuples; resolves with one won flag (1/0) per change. */
export type SendClaims = (args: (string | number)[]) => Promise<number[]>;

interface PendingClaim {
  readonly change: StatusChange;
  resolve(won: boolean): void;
  reject(error: unknown): void;
}

/**
 * The status changes a Redis presence store has yet to claim, sent together: every change made in
 * one event-loop turn goes in one script call (CLAIM_TRANSITIONS), at most CLAIM_CALL_BATCH a call,
 * in the order they were made. Redis runs a connection's calls in order, so a device's claims keep
 * their order across calls too. A failed call rejects each of its changes (callers treat that as a
 * store outage, as before batching). Without it a fleet coming online at once cost one command, one
 * socket write and its garbage per device (#21).
 */
export class ClaimQueue {
  private pending: PendingClaim[] = [];
  private scheduled = false;

  constructor(
    private readonly send: SendClaims,
    private readonly schedule: (run: () => void) => void = setImmediate,
  ) {}

  get waiting(): number {
    return this.pending.length;
  }

  claim(change: StatusChange): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ change, resolve, reject });
      if (this.pending.length >= CLAIM_CALL_BATCH) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        this.schedule(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Sends what is waiting now, CLAIM_CALL_BATCH changes a call. */
  flush(): void {
    while (this.pending.length > 0) {
      const batch = this.pending.length <= CLAIM_CALL_BATCH ? this.pending : this.pending.slice(0, CLAIM_CALL_BATCH);
      this.pending = this.pending.length <= CLAIM_CALL_BATCH ? [] : this.pending.slice(CLAIM_CALL_BATCH);
      const args: (string | number)[] = [];
      for (const { change: c } of batch) args.push(c.deviceId, c.status, c.reason, c.at, c.lastSeen === null ? '' : String(c.lastSeen));
      let sent: Promise<number[]>;
      try {
        sent = this.send(args);
      } catch (error) {
        for (const p of batch) p.reject(error);
        continue;
      }
      sent.then(
        (won) => batch.forEach((p, i) => p.resolve(won[i] === 1)),
        (error: unknown) => batch.forEach((p) => p.reject(error)),
      );
    }
  }
}
