import { z } from 'zod';
import type { Config } from '../../config.js';
import { DEVICE_ID_PATTERN } from '../../domain/device-id.js';
import { TOO_OLD, olderThanRetention } from '../../domain/reading-age.js';
import { validateTelemetry } from '../../domain/telemetry.js';
import type { Hub } from '../../hub/hub.js';
import type { Database } from '../../storage/database.js';
import { deleteDevice } from '../../storage/device-repository.js';
import { VERSION } from '../../version.js';
import { route, type Route } from './router.js';
import { deviceLimit } from '../../security/policy.js';
import { deviceRefusal, respondLater, sendDeviceNotFound, sendJson } from './respond.js';

/** The earlier REST service's body (seed 003), plus the hub's optional readings. */
export const statusBody = z.object({
  device_id: z.string().regex(DEVICE_ID_PATTERN, 'device ids are 1-128 chars of [A-Za-z0-9._:-]'),
  timestamp: z.union([z.iso.datetime({ offset: true, local: true }), z.number().int().nonnegative()]).optional(),
  battery_level: z.number().min(0).max(100).optional(),
  rssi: z.number().min(-140).max(0).optional(),
  online: z.boolean().optional(),
  response_time_ms: z.number().min(0).optional(),
  error_rate: z.number().min(0).max(1).optional(),
  metrics: z.record(z.string().min(1).max(64), z.number().finite()).optional(),
});

export const devicesQuery = z.object({
  status: z.enum(['online', 'offline', 'unknown']).optional(),
  type: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});


/** A POST /status answer: status line, body, extra headers (the owner's, passed back by another instance). */
type IngestAnswer = [status: string, body: unknown, headers?: Record<string, string>];

const INGEST_QUERY = 'http-ingest';
const OWNER_UNAVAILABLE: [string, unknown] = ['503 Service Unavailable', { detail: 'the instance that owns this device did not answer; retry', error: { code: 'owner_unavailable', message: 'retry' } }];

/** HTTP ingest (POST /status) through the MQTT pipeline's validation and hub, the seed's /health, and device list/delete. */
export function ingestRoutes(hub: Hub, database: Database, config: Config): Route[] {
  const limits = { maxPayloadBytes: config.MAX_PAYLOAD_BYTES, maxMetricKeys: config.MAX_METRIC_KEYS, maxFutureSkewMs: config.MAX_FUTURE_SKEW_S * 1000, maxMetricDepth: config.MAX_METRIC_DEPTH };

  /** POST /status on the device's owner: the same validation and pipeline as MQTT telemetry. */
  const ingestHere = (deviceId: string, rawBody: unknown, receivedAt: number): IngestAnswer => {
    const decoded = validateTelemetry(deviceId, rawBody, receivedAt, limits);
    if (!decoded.ok) {
      hub.countInvalid(decoded.reason);
      return ['422 Unprocessable Entity', { detail: [{ loc: ['body'], msg: decoded.detail, type: decoded.reason }] }];
    }
    if (olderThanRetention(decoded.telemetry.ts, decoded.telemetry.receivedAt, config.RETENTION_DAYS * 86_400_000)) {
      hub.countInvalid(TOO_OLD);
      return ['422 Unprocessable Entity', { detail: [{ loc: ['body', 'timestamp'], msg: 'older than the retention window (RETENTION_DAYS)', type: TOO_OLD }] }];
    }
    // A new device may be refused (cap or rate); a known one is its Map lookup.
    const admitted = hub.registry.admit(deviceId);
    if (typeof admitted === 'string') return deviceRefusal(admitted);
    hub.ingestTelemetry(decoded.telemetry);
    if ((rawBody as { online?: unknown }).online === false) hub.deviceSaid(deviceId, false, decoded.telemetry.receivedAt);
    return ['200 OK', { status: 'success', message: 'Device status updated successfully', device_id: deviceId }];
  };
  // Asked by another instance: the body was checked against the schema there, and is again here.
  hub.queries.define(INGEST_QUERY, (deviceId, request) => {
    const { body, receivedAt } = request as { body: unknown; receivedAt: unknown };
    const parsed = statusBody.safeParse(body);
    if (!parsed.success || parsed.data.device_id !== deviceId) return ['422 Unprocessable Entity', { detail: [{ loc: ['body'], msg: 'invalid forwarded body', type: 'invalid' }] }];
    return ingestHere(deviceId, body, typeof receivedAt === 'number' && Number.isFinite(receivedAt) ? receivedAt : Date.now());
  });

  return [
    route({
      method: 'POST',
      path: '/status',
      summary: 'HTTP ingest of a device status (same pipeline as MQTT telemetry)',
      action: 'device.ingest',
      device: { fromBody: (body) => [body.device_id] },
      body: statusBody,
      maxBodyBytes: Math.min(config.HTTP_MAX_BODY_BYTES, config.MAX_PAYLOAD_BYTES),
      ok: '200',
      answers: { '503': 'MAX_DEVICES reached (device_limit), or in a cluster the instance that owns the device did not answer (owner_unavailable): retry' },
      handle(res, r) {
        const deviceId = r.body.device_id;
        const receivedAt = Date.now();
        // One owner numbers, scores and stores each device (docs/scaling.md): another instance's
        // device is ingested there, and this request is answered once the owner has taken it.
        if (hub.queries.isLocal(deviceId)) {
          const [status, body, headers] = ingestHere(deviceId, r.rawBody, receivedAt);
          return sendJson(res, status, body, headers);
        }
        respondLater(res, async () => {
          const answer = await hub.queries.ask<IngestAnswer>(INGEST_QUERY, deviceId, { body: r.rawBody, receivedAt });
          return answer.ok ? [answer.value[0], answer.value[1]] : OWNER_UNAVAILABLE;
        }, r.aborted);
      },
    }),
    route({
      method: 'GET',
      path: '/health',
      summary: 'Health check of the earlier REST service: status, database, version, timestamp',
      action: 'public',
      device: 'none',
      ok: '200',
      handle(res, r) {
        respondLater(res, async () => {
          const connected = await database.ping().then(
            () => true,
            () => false,
          );
          return [connected ? '200 OK' : '503 Service Unavailable', { status: connected ? 'healthy' : 'unhealthy', timestamp: new Date().toISOString(), database: connected ? 'connected' : 'disconnected', version: VERSION }];
        }, r.aborted);
      },
    }),
    route({
      method: 'GET',
      path: '/devices',
      summary: 'Devices, filtered by status and type, paged (only those the key may read)',
      action: 'fleet.read',
      device: 'none',
      query: devicesQuery,
      ok: '200',
      handle(res, r) {
        const q = r.query;
        const registry = hub.registry;
        const pageIds: string[] = [];
        let total = 0;
        if (q.status === undefined && q.type === undefined && deviceLimit(r.principal) === null) {
          // The whole fleet: the sorted index skips to the offset, so a page costs its own devices.
          total = registry.size;
          for (const id of registry.idsFrom(q.offset)) {
            if (pageIds.length === q.limit) break;
            pageIds.push(id);
          }
        } else {
          // Filtered (and to the devices the key may read): one pass over the sorted ids, without copying or sorting the fleet.
          for (const id of registry.idsAfter('')) {
            const d = registry.get(id)!;
            if (!r.authorize(id).ok || (q.status !== undefined && d.status !== q.status) || (q.type !== undefined && d.type !== q.type)) continue;
            if (total >= q.offset && pageIds.length < q.limit) pageIds.push(id);
            total++;
          }
        }
        respondLater(res, async () => {
          // Scores, alerts and readings come from each device's owner (this instance unless clustered).
          const views = await hub.views.many(pageIds);
          const page = pageIds.flatMap((id) => {
            const d = views.get(id);
            if (d === undefined) return [];
            return [{
              device_id: d.id,
              type: d.type,
              name: d.name,
              status: d.status,
              flapping: d.flapping,
              last_seen: d.lastSeen === null ? null : new Date(d.lastSeen).toISOString(),
              health_score: d.healthScore,
              active_alerts: d.activeAlerts,
              battery_level: d.batteryLevel,
              rssi: d.rssi,
            }];
          });
          return ['200 OK', { devices: page, total, limit: q.limit, offset: q.offset }];
        }, r.aborted);
      },
    }),
    route({
      method: 'DELETE',
      path: '/devices/{device_id}',
      summary: 'Forget a device (its history stays until retention)',
      action: 'device.admin',
      device: 'path',
      ok: '200',
      handle(res, r) {
        const id = r.params[0]!;
        if (hub.registry.get(id) === undefined) return sendDeviceNotFound(res, id);
        respondLater(res, async () => {
          await deleteDevice(database.db, id);
          await hub.forgetEverywhere(id);
          return ['200 OK', { device_id: id, deleted: true }];
        }, r.aborted);
      },
    }),
  ];
}
