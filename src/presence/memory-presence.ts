import type { Faults } from '../errors/boundary.js';
import { DeadlineHeap } from './deadline-heap.js';
import type { PresenceListener, PresenceStore } from './presence-store.js';
import { JudgeGate } from './judge-gate.js';

interface Entry {
  lastSeen: number;
  deadline: number;
}

/**
 * Presence for one process: a Map of live deadlines plus a min-heap, and one timer armed for the
 * earliest deadline, so a device expires at its deadline (not at the next sweep) with no timer per
 * device. A touch that moves a deadline later only updates the Map; the old heap entry is found
 * stale when it surfaces and re-pushed with the current deadline.
 */
export function createMemoryPresence(opts: { sweepMs: number; faults: Faults; now?: () => number }): PresenceStore {
  const now = opts.now ?? Date.now;
  const live = new Map<string, Entry>();
  const heap = new DeadlineHeap();
  let listener: PresenceListener | null = null;
  let timer: NodeJS.Timeout | null = null;
  let armedFor = Infinity;
  let sweeper: NodeJS.Timeout | null = null;
  const gate = new JudgeGate();

  function arm(): void {
    if (!gate.open) return;
    const next = heap.peekDeadline();
    if (next === armedFor) return;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    armedFor = next;
    if (next === Infinity) return;
    timer = setTimeout(expireDue, Math.max(0, next - now()));
    timer.unref();
  }

  function expireDue(): void {
    if (!gate.open) return;
    timer = null;
    armedFor = Infinity;
    const at = now();
    while (heap.size > 0 && heap.peekDeadline() <= at) {
      const id = heap.peekId()!;
      const heapDeadline = heap.peekDeadline();
      heap.pop();
      const entry = live.get(id);
      if (entry === undefined) continue; // removed
      if (entry.deadline > heapDeadline) {
        // Touched since this entry was pushed: re-queue at the real deadline.
        heap.push(entry.deadline, id);
        continue;
      }
      if (entry.deadline !== heapDeadline) continue; // a duplicate entry of a re-armed deadline
      live.delete(id);
      // One device's fault must not leave the others unexpired (nor the timer unarmed).
      try {
        listener?.onExpired(id, entry.lastSeen, entry.deadline);
      } catch (error) {
        opts.faults.report('presence', error, { op: 'expired' });
      }
    }
    if (heap.size > 2 * live.size + 1024) heap.rebuild([...live].map(([id, e]) => [id, e.deadline]));
    arm();
  }

  return {
    kind: 'memory',
    async start(l, judgeAfter) {
      listener = l;
      gate.wait(judgeAfter, expireDue);
      // A safety net in case a timer fires early or the clock jumps.
      sweeper = setInterval(expireDue, opts.sweepMs);
      sweeper.unref();
      arm();
    },
    touch(deviceId, at, timeoutMs) {
      const deadline = at + timeoutMs;
      const entry = live.get(deviceId);
      if (entry === undefined) {
        live.set(deviceId, { lastSeen: at, deadline });
        heap.push(deadline, deviceId);
        if (deadline < armedFor) arm();
        return;
      }
      if (at > entry.lastSeen) entry.lastSeen = at;
      if (deadline > entry.deadline) {
        entry.deadline = deadline;
        return; // the old heap entry will be re-queued when it surfaces
      }
      if (deadline < entry.deadline) {
        // A shorter timeout than before: the new, earlier deadline needs its own heap entry.
        entry.deadline = deadline;
        heap.push(deadline, deviceId);
        if (deadline < armedFor) arm();
      }
    },
    claim(change) {
      // One process: the hub's own registry already decided; an offline change forgets the deadline.
      if (change.status === 'offline') live.delete(change.deviceId);
      return true;
    },
    async lastSeen(deviceIds) {
      return deviceIds.map((id) => live.get(id)?.lastSeen ?? null);
    },
    health() {
      return { ok: true, detail: `in-process, ${live.size} devices present` };
    },
    async stop() {
      if (timer !== null) clearTimeout(timer);
      if (sweeper !== null) clearInterval(sweeper);
      timer = sweeper = null;
      listener = null;
    },
  };
}
