/** Microsecond samples → p50/p99/p99.9 in milliseconds (null without samples). */
export function latencySummary(samplesUs: number[]): { p50: number | null; p99: number | null; p999: number | null } {
  samplesUs.sort((a, b) => a - b);
  const at = (p: number) => (samplesUs.length ? samplesUs[Math.min(samplesUs.length - 1, Math.floor(p * samplesUs.length))]! / 1000 : null);
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999) };
}

/** The publisher's clock, in µs since the epoch, comparable across processes on one machine. */
export const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;
