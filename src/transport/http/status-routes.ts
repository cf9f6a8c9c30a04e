import { z } from 'zod';
import { isDeviceId } from '../../domain/device-id.js';
import type { DeviceView } from '../../hub/device-views.js';
import type { Hub } from '../../hub/hub.js';
import type { PresenceStore } from '../../presence/presence-store.js';
import type { Database } from '../../storage/database.js';
import { computeUptime } from '../../domain/uptime.js';
import { getMetricBuckets } from '../../storage/metrics-repository.js';
import { getStatusHistory, getStatusWindow, getTelemetryHistory, saveDeviceSettings } from '../../storage/device-repository.js';
import { decodeCursor, devicePage } from './device-pages.js';
import type { HttpResponse } from '../uws.js';
import { route, type Route } from './router.js';
import { ownerReadRoute } from './owner-read.js';
import { queryError, respondLater, sendDeviceNotFound, sendDeviceRefused, sendJson, sendQueryError } from './respond.js';
import { iso } from '../../domain/representations.js';

export interface StatusRoutesContext {
  readonly hub: Hub;
  readonly presence: PresenceStore;
  readonly database: Database;
  readonly bounds: QueryBounds;
}

/** HTTP_MAX_PAGE_ITEMS, MAX_QUERY_RANGE_DAYS (in ms) and MAX_QUERY_ROWS. */
export interface QueryBounds {
  readonly maxPageItems: number;
  readonly maxRangeMs: number;
  readonly maxRows: number;
  /** Counts a request refused by one of these bounds (vigil_http_refused_total{code}). */
  refused(code: string): void;
}

/** A page of /status/summary unless `limit` says otherwise (or HTTP_MAX_PAGE_ITEMS is lower). */
export const SUMMARY_DEFAULT_LIMIT = 500;


const mapNull = <T, U>(value: T | null, f: (value: T) => U): U | null => (value === null ? null : f(value));

/** The seed REST service's status view of one device. */
function statusView(view: DeviceView) {
  return {
    device_id: view.id,
    timestamp: iso(view.ts),
    battery_level: view.batteryLevel,
    rssi: view.rssi,
    online: view.status === 'online',
    status: view.status,
    flapping: view.flapping,
    last_updated: iso(view.lastSeen),
    /** The timeout in force and where it comes from: device, type, learned or default. */
    offline_timeout_s: view.effectiveTimeoutMs / 1000,
    offline_timeout_source: view.timeoutSource,
  };
}

function deviceView(view: DeviceView) {
  return {
    ...statusView(view),
    type: view.type,
    name: view.name,
    // Here the device's own setting (what PUT /devices/{id} writes); the one in force is beside it.
    offline_timeout_s: view.timeoutMs === null ? null : view.timeoutMs / 1000,
    effective_offline_timeout_s: view.effectiveTimeoutMs / 1000,
  };
}

export const historyQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  since: z.iso.datetime({ offset: true }).optional(),
  before: z.iso.datetime({ offset: true }).optional(),
  kind: z.enum(['telemetry', 'status']).default('telemetry'),
});

export const metricsQuery = z.object({
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  bucket: z.enum(['1m', '1h']).default('1m'),
  /** Sensor metrics to aggregate besides the standard readings, comma-separated. */
  metrics: z.string().max(1100).optional(),
});

export const summaryQuery = z.object({
  limit: z.coerce.number().int().min(1).optional(),
  cursor: z.string().max(200).optional(),
});

export const uptimeQuery = z.object({
  window_s: z.coerce.number().int().min(60).max(90 * 86_400).default(86_400),
});

export const batchBody = z.object({
  device_ids: z.array(z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'device ids are 1-128 chars of [A-Za-z0-9._:-]')).min(1).max(1000),
});

export const deviceSettingsBody = z
  .object({
    type: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/).nullable().optional(),
    name: z.string().max(200).nullable().optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    offline_timeout_s: z.number().int().min(1).max(7 * 24 * 3600).nullable().optional(),
  })
  .strict();

/** 422 for a query over one of the bounds, counted by its code. */
function sendOverBound(res: HttpResponse, bounds: QueryBounds, field: string, msg: string, code: string): void {
  bounds.refused(code);
  sendQueryError(res, field, msg, code);
}

function sendRangeTooLarge(res: HttpResponse, field: string, bounds: QueryBounds): void {
  sendOverBound(res, bounds, field, `the time range may span at most ${bounds.maxRangeMs / 86_400_000} days (MAX_QUERY_RANGE_DAYS)`, 'range_too_large');
}

/** GET /status/summary, GET /status/{id}, GET /status/{id}/history, POST /status/batch, GET|PUT /devices/{id}, device metrics and uptime. */
export function statusRoutes(deps: StatusRoutesContext): Route[] {
  const { hub, bounds } = deps;
  const known = (id: string) => isDeviceId(id) && hub.registry.get(id) !== undefined;
  /** One device's live view from its owner, rendered as the route's shape (404 when unknown). */
  const viewRoute = (path: string, summary: string, render: (view: DeviceView) => unknown) =>
    ownerReadRoute({ path, summary, known, read: async (id) => ({ ok: true, value: mapNull(await hub.views.one(id), render) }) });
  return [
    route({
      method: 'GET',
      path: '/status/summary',
      summary: `Devices with their latest status, ${SUMMARY_DEFAULT_LIMIT} a page by default (limit ≤ HTTP_MAX_PAGE_ITEMS; next page: cursor = next_cursor), with the fleet's totals (of the devices the key may read)`,
      action: 'fleet.read',
      device: 'none',
      query: summaryQuery,
      ok: '200',
      // Paged by cursor (device ids in sorted order); the totals are the fleet's, kept as devices
      // change, so a page costs its own devices whatever the fleet's size. devicePage walks only the
      // devices a limited key may read (the policy's filter for fleet.read).
      handle(res, r) {
        const { cursor } = r.query;
        const limit = r.query.limit ?? Math.min(SUMMARY_DEFAULT_LIMIT, bounds.maxPageItems);
        if (limit > bounds.maxPageItems) return sendOverBound(res, bounds, 'limit', `at most ${bounds.maxPageItems} devices a page (HTTP_MAX_PAGE_ITEMS)`, 'too_big');
        const after = cursor === undefined ? '' : decodeCursor(cursor);
        if (after === null) return sendOverBound(res, bounds, 'cursor', 'not a cursor this API gave out (use next_cursor as it is)', 'invalid_cursor');
        const page = devicePage(hub.registry, r.principal, after, limit);
        respondLater(res, async () => {
          const views = await hub.views.many(page.ids);
          const devices = page.ids.flatMap((id) => {
            const view = views.get(id);
            return view === undefined ? [] : [{ device_id: view.id, battery_level: view.batteryLevel, online: view.status === 'online', status: view.status, last_update: iso(view.lastSeen) }];
          });
          const { total, online, offline, unknown } = page.totals;
          return ['200 OK', { devices, total_devices: total, online_devices: online, offline_devices: offline, unknown_devices: unknown, limit, next_cursor: page.nextCursor }];
        }, r.aborted);
      },
    }),
    viewRoute('/status/{device_id}', 'Latest status of a device (404 {"detail":"Device X not found"})', statusView),
    route({
      method: 'GET',
      path: '/status/{device_id}/history',
      summary: 'Telemetry (or ?kind=status: status changes), newest first, paged',
      action: 'device.read',
      device: 'path',
      query: historyQuery,
      ok: '200',
      handle(res, r) {
        const id = r.params[0]!;
        if (!known(id)) return sendDeviceNotFound(res, id);
        const q = r.query;
        const page = { limit: q.limit, since: q.since ? Date.parse(q.since) : undefined, before: q.before ? Date.parse(q.before) : undefined };
        respondLater(res, async () => {
          if (q.kind === 'status') {
            const result = await getStatusHistory(deps.database.db, id, page);
            const history = result.history.map((h) => ({ ...h, last_seen: iso(h.lastSeen), timestamp: iso(h.at), lastSeen: undefined, at: undefined }));
            return ['200 OK', { device_id: id, history, total_records: result.totalRecords, has_more: result.hasMore, next_before: result.hasMore ? history.at(-1)?.timestamp : null }];
          }
          const result = await getTelemetryHistory(deps.database.db, id, page);
          const history = result.history.map((h) => ({
            timestamp: iso(h.ts),
            battery_level: h.batteryLevel,
            rssi: h.rssi,
            response_time_ms: h.responseTimeMs,
            error_rate: h.errorRate,
            metrics: h.metrics,
            online: true,
          }));
          return ['200 OK', { device_id: id, history, total_records: result.totalRecords, has_more: result.hasMore, next_before: result.hasMore ? history.at(-1)?.timestamp : null }];
        }, r.aborted);
      },
    }),
    // Batch lookup: presence answered in one store round trip for up to 1000 ids.
    route({
      method: 'POST',
      path: '/status/batch',
      summary: 'Status of up to 1000 devices, presence in one round trip (403 if the key may not read one of them)',
      action: 'device.read',
      device: { fromBody: (body) => body.device_ids },
      body: batchBody,
      ok: '200',
      handle(res, r) {
        const ids = r.body.device_ids;
        respondLater(res, async () => {
          const [seen, views] = await Promise.all([deps.presence.lastSeen(ids), hub.views.many(ids)]);
          const devices = ids.map((id, i) => {
            const view = views.get(id);
            return view ? { ...statusView(view), present: seen[i] !== null } : { device_id: id, status: 'unknown', online: false, present: seen[i] !== null };
          });
          return ['200 OK', { devices }];
        }, r.aborted);
      },
    }),
    route({
      method: 'GET',
      path: '/devices/{device_id}/metrics',
      summary: 'avg/min/max per minute or hour bucket, for charts (range ≤ MAX_QUERY_RANGE_DAYS, else 422 range_too_large)',
      action: 'device.read',
      device: 'path',
      query: metricsQuery,
      ok: '200',
      handle(res, r) {
        const id = r.params[0]!;
        if (!known(id)) return sendDeviceNotFound(res, id);
        const q = r.query;
        const to = q.to ? Date.parse(q.to) : Date.now();
        const from = q.from ? Date.parse(q.from) : to - (q.bucket === '1m' ? 3600_000 : 86_400_000);
        if (from > to) return sendQueryError(res, 'from', '`from` is after `to`', 'invalid_range');
        if (to - from > bounds.maxRangeMs) return sendRangeTooLarge(res, 'from', bounds);
        const sensors = q.metrics ? q.metrics.split(',').slice(0, 16) : [];
        respondLater(res, async () => {
          const buckets = await getMetricBuckets(deps.database.db, id, { from, to, bucket: q.bucket, sensors });
          return ['200 OK', { device_id: id, bucket: q.bucket, from: iso(from), to: iso(to), buckets: buckets.map((b) => ({ start: iso(b.start), count: b.count, ...b.fields })) }];
        }, r.aborted);
      },
    }),
    route({
      method: 'GET',
      path: '/devices/{device_id}/uptime',
      summary: 'Online share of a window, from the status history (window ≤ MAX_QUERY_RANGE_DAYS)',
      action: 'device.read',
      device: 'path',
      query: uptimeQuery,
      ok: '200',
      handle(res, r) {
        const id = r.params[0]!;
        if (!known(id)) return sendDeviceNotFound(res, id);
        if (r.query.window_s * 1000 > bounds.maxRangeMs) return sendRangeTooLarge(res, 'window_s', bounds);
        const to = Date.now();
        const from = to - r.query.window_s * 1000;
        respondLater(res, async () => {
          const window = await getStatusWindow(deps.database.db, id, from, to, bounds.maxRows);
          if (window === null) {
            bounds.refused('too_many_rows');
            return ['422 Unprocessable Entity', queryError('window_s', `more than ${bounds.maxRows} status changes in this window (MAX_QUERY_ROWS): ask for a shorter one`, 'too_many_rows')];
          }
          const uptime = computeUptime(window.before, window.changes, from, to);
          return ['200 OK', { device_id: id, from: iso(from), to: iso(to), uptime_ratio: uptime.ratio, online_s: uptime.onlineMs / 1000, window_s: uptime.windowMs / 1000, transitions: uptime.transitions }];
        }, r.aborted);
      },
    }),
    viewRoute('/devices/{device_id}', 'A device: status, type, name, timeouts', deviceView),
    route({
      method: 'PUT',
      path: '/devices/{device_id}',
      summary: 'Create or update a device: type, name, metadata, offline_timeout_s',
      action: 'device.admin',
      device: 'path',
      body: deviceSettingsBody,
      ok: '200',
      handle(res, r) {
        const id = r.params[0]!;
        if (!isDeviceId(id)) {
          sendJson(res, '422 Unprocessable Entity', { detail: [{ loc: ['path', 'device_id'], msg: 'device ids are 1-128 chars of [A-Za-z0-9._:-]', type: 'invalid_string' }] });
          return;
        }
        const settings = r.body;
        // Settings for an id the hub has not seen create it: the same bounds as a device that speaks.
        const admitted = hub.registry.admit(id);
        if (typeof admitted === 'string') return sendDeviceRefused(res, admitted);
        respondLater(res, async () => {
          await saveDeviceSettings(deps.database.db, id, {
            type: settings.type,
            name: settings.name,
            metadata: settings.metadata,
            offlineTimeoutS: settings.offline_timeout_s,
          });
          // Applied here and on the device's owner, which is the instance that times it out.
          const view = await hub.views.updateSettings(id, {
            ...(settings.type !== undefined ? { type: settings.type } : {}),
            ...(settings.name !== undefined ? { name: settings.name } : {}),
            ...(settings.offline_timeout_s !== undefined ? { timeoutMs: settings.offline_timeout_s === null ? null : settings.offline_timeout_s * 1000 } : {}),
          });
          const { device_id, type, name, offline_timeout_s, effective_offline_timeout_s } = deviceView(view);
          return ['200 OK', { device_id, type, name, offline_timeout_s, effective_offline_timeout_s }];
        }, r.aborted);
      },
    }),
  ];
}
