import { rng } from './device-model.js';

/**
 * Irregular reporting patterns, as arrival times only (no payloads): for replaying presence
 * decisions deterministically without a broker or a clock. Each class is a kind of device seen in
 * real fleets; every device also has two real outages, 15 minutes apart, so detection lag can be
 * measured — the second one while the first is still among the intervals a learner keeps.
 */
export type ArrivalClass = 'fast_1s' | 'regular_10s' | 'jittery_30s' | 'lossy_15s' | 'bursty_120s' | 'slow_300s';

export const ARRIVAL_CLASSES: readonly ArrivalClass[] = ['fast_1s', 'regular_10s', 'jittery_30s', 'lossy_15s', 'bursty_120s', 'slow_300s'];

export interface ArrivalTrace {
  readonly id: string;
  readonly kind: ArrivalClass;
  /** Arrival times, ms from the start, increasing. */
  readonly arrivals: readonly number[];
  /** The real outages: no arrivals in [start, end). */
  readonly outages: readonly { readonly start: number; readonly end: number }[];
}

/** The next interval of a device of this class (ms), and whether this message is lost on the way. */
function nextInterval(kind: ArrivalClass, index: number, random: () => number): { gap: number; lost: boolean } {
  const around = (s: number, spread: number) => s * 1000 * (1 + (random() * 2 - 1) * spread);
  switch (kind) {
    case 'fast_1s':
      return { gap: around(1, 0.2), lost: false };
    case 'regular_10s':
      return { gap: around(10, 0.1), lost: false };
    case 'jittery_30s':
      return { gap: around(30, 0.5), lost: false };
    case 'lossy_15s':
      // One message in ten is lost (radio, broker): a gap of two or three intervals now and then.
      return { gap: around(15, 0.1), lost: random() < 0.1 };
    case 'bursty_120s':
      // A batch uploader: five messages a second apart, then two minutes of silence.
      return { gap: index % 5 === 4 ? around(120, 0.1) : around(1, 0.2), lost: false };
    case 'slow_300s':
      return { gap: around(300, 0.1), lost: false };
  }
}

/** `perClass` devices of every class over `durationMs`, each with two outages of `outageMs`, the first in the middle half. */
export function arrivalTraces(perClass: number, durationMs: number, outageMs: number, seed: number): ArrivalTrace[] {
  const random = rng(seed);
  const traces: ArrivalTrace[] = [];
  for (const kind of ARRIVAL_CLASSES) {
    for (let n = 0; n < perClass; n++) {
      const start = durationMs * (0.25 + random() * 0.4);
      const second = start + outageMs + 15 * 60_000;
      const outages = [
        { start, end: start + outageMs },
        { start: second, end: second + outageMs },
      ];
      const arrivals: number[] = [];
      let at = random() * 10_000;
      for (let i = 0; at < durationMs; i++) {
        const { gap, lost } = nextInterval(kind, i, random);
        if (!lost) arrivals.push(Math.round(at));
        at += gap;
        const away = outages.find((o) => at >= o.start && at < o.end);
        if (away !== undefined) at = away.end + random() * 1000;
      }
      traces.push({ id: `${kind}-${n}`, kind, arrivals, outages });
    }
  }
  return traces;
}
