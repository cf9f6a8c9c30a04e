import { z } from 'zod';
import type { Config } from '../../config.js';
import type { IngestEntry } from '../../cluster/ingest-entry.js';
import type { StatusOutcome } from '../../cluster/owner-api/index.js';
import { statusBody } from '../../domain/status-body.js';
import type { Hub } from '../../hub/hub.js';
import type { Database } from '../../storage/database.js';
import { deleteDevice } from '../../storage/device-repository.js';
import { VERSION } from '../../version.js';
import { route, type Route } from './router.js';
import { deviceLimit } from '../../security/policy.js';
import { deviceRefusal, respondLater, sendDeviceNotFound, sendJson } from './respond.js';

/** The earlier REST service's body (seed 003), plus the hub's optional readings (src/domain/status-body.ts). */
export { statusBody };

export const devicesQuery = z.object({
  status: z.enum(['online', 'offline', 'unknown']).optional(),
  type: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});


const OWNER_UNAVAILABLE: [string, unknown] = ['503 Service Unavailable', { detail: 'the instance that owns this device did not answer; retry', error: { code: 'owner_unavailable', message: 'retry' } }];

/** A POST /status outcome as HTTP: status line, body, extra headers. */
function statusAnswer(deviceId: string, outcome: StatusOutcome): [status: string, body: unknown, headers?: Record<string, string>] {
  switch (outcome.kind) {
    case 'accepted':
      return ['200 OK', { status: 'success', message: 'Device status updated successfully', device_id: deviceId }];
    case 'invalid':
      return ['422 Unprocessable Entity', { detail: [{ loc: outcome.field === 'body' ? ['body'] : ['body', 'timestamp'], msg: outcome.detail, type: outcome.reason }] }];
    case 'refused':
      return deviceRefusal(outcome.reason);
  }
}

/** HTTP ingest (POST /status) through the ingest entry (the MQTT pipeline's validation and hub), the seed's /health, and device list/delete. */
export function ingestRoutes(hub: Hub, entry: IngestEntry, database: Database, config: Config): Route[] {
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
        // One owner numbers, scores and stores each device (docs/scaling.md): another instance's
        // device is ingested there, and this request is answered once the owner has taken it.
        const outcome = entry.status(deviceId, r.rawBody, Date.now());
        if (!(outcome instanceof Promise)) {
          const [status, body, headers] = statusAnswer(deviceId, outcome);
          return sendJson(res, status, body, headers);
        }
        respondLater(res, async () => {
          const answer = await outcome;
          if (!answer.ok) return OWNER_UNAVAILABLE;
          const [status, body] = statusAnswer(deviceId, answer.value);
          return [status, body];
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
