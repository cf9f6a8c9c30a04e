/**
 * The hub's event-loop delay over a window, from the prom-client default metrics it exposes:
 * `nodejs_eventloop_lag_{p50,p99,max}_seconds` come from a perf_hooks.monitorEventLoopDelay
 * histogram that prom-client resets at every /metrics scrape. So one scrape opens the window
 * (`start`), the next reads it (`read`); nothing else may scrape the hub in between. The histogram
 * times a 10 ms timer (prom-client's eventLoopMonitoringPrecision), so each sample includes those
 * 10 ms: they are subtracted, leaving how late the loop was.
 */
const RESOLUTION_MS = 10;

export interface EventLoopDelay {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

export async function startEventLoopWindow(port: number): Promise<void> {
  await scrape(port);
}

/** Delay in ms (p50, p99, max) since the last scrape. */
export async function readEventLoopWindow(port: number): Promise<EventLoopDelay> {
  const text = await scrape(port);
  const ms = (name: string) => {
    const seconds = Number(new RegExp(`^nodejs_eventloop_lag_${name}_seconds (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    return Math.max(0, seconds * 1000 - RESOLUTION_MS);
  };
  return { p50: ms('p50'), p99: ms('p99'), max: ms('max') };
}
