import { isDeviceId } from '../domain/device-id.js';
import type { DeviceState } from '../domain/device-state.js';
import { iso } from '../domain/representations.js';
import type { Insights } from './insights.js';

/** What a row reads of a device's insights. */
export type RowInsights = Pick<Insights, 'score' | 'activeAlertCount'>;

/**
 * One device's row of the fleet table as it travels in `fleet_summary` frames, and as it comes
 * from another instance (checked and written again, never passed on as received).
 */

/** One device's row of the fleet table, as it travels in `fleet_summary` frames (the reference form). */
export function summaryEntryReference(state: DeviceState, insights: RowInsights): string {
  return JSON.stringify({
    id: state.id,
    type: state.type,
    name: state.name,
    status: state.status,
    last_seen: iso(state.lastSeen),
    battery_level: state.telemetry?.batteryLevel ?? null,
    rssi: state.telemetry?.rssi ?? null,
    score: insights.score(state.id),
    active_alerts: insights.activeAlertCount(state.id),
    flapping: state.flapping,
  });
}

const text = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));
const num = (v: number | null | undefined): string => (v === null || v === undefined ? 'null' : String(v));

/**
 * The row written out by hand: the same text as the reference (the unit test holds them equal),
 * built for every changed device each interval. Ids are validated to [A-Za-z0-9._:-] and numbers
 * to be finite, so only type and name need escaping.
 */
export function summaryEntry(state: DeviceState, insights: RowInsights): string {
  const t = state.telemetry;
  return (
    `{"id":"${state.id}","type":${text(state.type)},"name":${text(state.name)},"status":"${state.status}",` +
    `"last_seen":${state.lastSeen === null ? 'null' : `"${new Date(state.lastSeen).toISOString()}"`},` +
    `"battery_level":${num(t?.batteryLevel)},"rssi":${num(t?.rssi)},"score":${num(insights.score(state.id))},` +
    `"active_alerts":${insights.activeAlertCount(state.id)},"flapping":${state.flapping}}`
  );
}

const STATUSES = new Set(['online', 'offline', 'unknown']);
const nullableNumber = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const shortText = (v: unknown): string | null => (typeof v === 'string' && v.length <= 256 ? v : null);

/** A row from another instance, checked and written again in the frame's field order (never passed on as received). */
export function normalizeRow(row: unknown): { id: string; text: string } | null {
  if (typeof row !== 'object' || row === null) return null;
  const r = row as Record<string, unknown>;
  if (!isDeviceId(r.id) || typeof r.status !== 'string' || !STATUSES.has(r.status)) return null;
  const lastSeen = typeof r.last_seen === 'string' && !Number.isNaN(Date.parse(r.last_seen)) ? r.last_seen : null;
  const text = JSON.stringify({
    id: r.id,
    type: shortText(r.type),
    name: shortText(r.name),
    status: r.status,
    last_seen: lastSeen,
    battery_level: nullableNumber(r.battery_level),
    rssi: nullableNumber(r.rssi),
    score: nullableNumber(r.score),
    active_alerts: typeof r.active_alerts === 'number' && Number.isSafeInteger(r.active_alerts) && r.active_alerts >= 0 ? r.active_alerts : 0,
    flapping: r.flapping === true,
  });
  return { id: r.id, text };
}
