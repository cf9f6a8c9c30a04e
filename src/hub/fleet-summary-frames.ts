import type { Metrics } from '../metrics.js';

/**
 * `fleet_summary` frames of at most `chunk` rows each (at least one frame, so an empty delta that
 * only removes devices still goes out); removed ids go with the last chunk. Counted in the metrics.
 */
export function summaryFrames(rows: readonly string[], removed: readonly string[], full: boolean, chunk: number, now: number, metrics: Metrics): string[] {
  const timestamp = new Date(now).toISOString();
  const frames: string[] = [];
  const count = Math.max(1, Math.ceil(rows.length / chunk));
  const kind = full ? 'full' : 'delta';
  for (let i = 0; i < count; i++) {
    const part = rows.slice(i * chunk, (i + 1) * chunk);
    const last = i === count - 1;
    // Removed ids are validated device ids, so need no escaping.
    const frame =
      `{"type":"fleet_summary","full":${full},"last":${last},"devices":[${part.join(',')}],` +
      `"removed":${last ? JSON.stringify(removed) : '[]'},"timestamp":"${timestamp}"}`;
    metrics.fleetSummaryFrames.inc({ kind });
    metrics.fleetSummaryBytes.inc({ kind }, Buffer.byteLength(frame));
    metrics.fleetSummaryDevices.observe(part.length);
    frames.push(frame);
  }
  return frames;
}

/** Cluster mode: one owner's changed rows as `from|tick|[rows]` messages of at most `chunk` rows. */
export function peerMessages(instanceId: string, tick: number, rows: readonly string[], chunk: number): string[] {
  const messages: string[] = [];
  for (let i = 0; i < rows.length; i += chunk) messages.push(`${instanceId}|${tick}|[${rows.slice(i, i + chunk).join(',')}]`);
  return messages;
}

/** `from|tick|[rows]` from another owner, or null when it is not one. */
export function parsePeerMessage(message: string): { from: string; version: number; rows: unknown[] } | null {
  const a = message.indexOf('|');
  const b = message.indexOf('|', a + 1);
  const version = Number(message.slice(a + 1, b));
  let rows: unknown;
  try {
    rows = a > 0 && b > a && Number.isSafeInteger(version) ? JSON.parse(message.slice(b + 1)) : null;
  } catch {
    rows = null;
  }
  return Array.isArray(rows) ? { from: message.slice(0, a), version, rows } : null;
}
