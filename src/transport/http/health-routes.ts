import { z } from 'zod';
import { SEVERITIES } from '../../domain/alert-rules.js';
import { isDeviceId } from '../../domain/device-id.js';
import type { Hub } from '../../hub/hub.js';
import type { Database } from '../../storage/database.js';
import { healthTrend, listAlerts } from '../../storage/alert-repository.js';
import { deviceLimit } from '../../security/policy.js';
import { route, type Route } from './router.js';
import { respondLater, sendDeviceNotFound, sendJson } from './respond.js';
import { alertData, healthData, iso } from '../../domain/representations.js';

export const alertsQuery = z.object({
  state: z.enum(['active', 'raised', 'acknowledged', 'cleared', 'all']).default('active'),
  device_id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/).optional(),
  severity: z.enum(SEVERITIES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.iso.datetime({ offset: true }).optional(),
});

export const healthDevicesQuery = z.object({ worst: z.coerce.number().int().min(1).max(1000).default(10) });
export const ackBody = z.object({ by: z.string().min(1).max(100).optional() }).strict();


/** The 503 of a cluster whose owning instance did not answer. */
const OWNER_UNAVAILABLE = ['503 Service Unavailable', { detail: 'the instance holding this device did not answer; retry', error: { code: 'owner_unavailable', message: 'retry' } }] as const;
const BUCKETS = ['0-20', '20-40', '40-60', '60-80', '80-100'];

interface FleetPart {
  devices: number;
  sum: number;
  distribution: number[];
  worst: { device_id: string; score: number }[];
}

/**
 * Health scores, rolling metrics and alerts over REST. Scores and live alerts are held by the
 * instance that owns a device (one instance unless clustered): each in-memory read is a named
 * query that runs there, so any instance answers alike.
 */
export function healthRoutes(hub: Hub, database: Database): Route[] {
  hub.queries.define('metrics-summary', (id) => {
    const summary = hub.insights.metricsSummary(id, Date.now());
    if (summary === null) return null;
    const view = (s: typeof summary.recent) => ({
      message_count: s.count,
      avg_response_time_ms: s.avgResponseTimeMs,
      max_response_time_ms: s.maxResponseTimeMs,
      avg_error_rate: s.avgErrorRate,
      avg_battery_level: s.avgBattery,
      avg_rssi: s.avgRssi,
    });
    return { device_id: id, recent: view(summary.recent), last_24h: { ...view(summary.last24h), uptime_ratio: summary.uptime24h } };
  });
  hub.queries.define('health', async (id) => {
    const health = hub.insights.health(id);
    if (health === null) return null;
    const points = await healthTrend(database.db, id, Date.now() - 86_400_000);
    const first = points[0]?.score ?? health.score;
    const delta = Math.round((health.score - first) * 10) / 10;
    return { device_id: id, ...healthData(health), trend: { direction: delta > 1 ? 'up' : delta < -1 ? 'down' : 'flat', change_24h: delta, points: points.map((p) => ({ timestamp: iso(p.at), score: p.score })) } };
  });
  // `only`: the devices of a key limited to some (null: all), so a limited key sees its own fleet.
  hub.queries.define('fleet-health', (_all, body) => {
    const { worst, only } = body as { worst: number; only: string[] | null };
    const allowed = only === null ? null : new Set(only);
    const scores = hub.insights.healthOfAll().filter((s) => allowed === null || allowed.has(s.deviceId));
    const distribution = [0, 0, 0, 0, 0];
    for (const s of scores) distribution[Math.min(4, Math.floor(s.score / 20))]!++;
    const part: FleetPart = {
      devices: scores.length,
      sum: scores.reduce((n, s) => n + s.score, 0),
      distribution,
      worst: scores.sort((a, b) => a.score - b.score).slice(0, worst).map((s) => ({ device_id: s.deviceId, score: s.score })),
    };
    return part;
  });

  /** A per-device read answered by the device's owner: 404 when it knows no such device. */
  const ownerRead = (op: string, path: string, summary: string): Route =>
    route({
      method: 'GET',
      path,
      summary,
      action: 'device.read',
      device: 'path',
      ok: '200',
      handle(res, r) {
        const id = r.params[0]!;
        if (!isDeviceId(id)) return sendDeviceNotFound(res, id);
        respondLater(res, async () => {
          const answer = await hub.queries.ask<unknown>(op, id);
          if (!answer.ok) return [...OWNER_UNAVAILABLE];
          return answer.value === null ? ['404 Not Found', { detail: `Device ${id} not found` }] : ['200 OK', answer.value];
        }, r.aborted);
      },
    });

  return [
    ownerRead('metrics-summary', '/devices/{device_id}/metrics/summary', 'Rolling metrics: recent and last 24 h'),
    ownerRead('health', '/devices/{device_id}/health', 'Health score, components and 24 h trend'),
    route({
      method: 'GET',
      path: '/health/devices',
      summary: 'Fleet health: distribution and worst devices (of the devices the key may read)',
      action: 'fleet.read',
      device: 'none',
      query: healthDevicesQuery,
      ok: '200',
      handle(res, r) {
        const worst = r.query.worst;
        const limit = deviceLimit(r.principal);
        respondLater(res, async () => {
          // Each instance scores the devices it owns: the fleet is the sum of their parts.
          const { answers, missing } = await hub.queries.everyone<FleetPart>('fleet-health', { worst, only: limit === null ? null : [...limit] });
          if (answers.length === 0) return [...OWNER_UNAVAILABLE];
          const devices = answers.reduce((n, a) => n + a.devices, 0);
          const sum = answers.reduce((n, a) => n + a.sum, 0);
          const distribution = Object.fromEntries(BUCKETS.map((label, i) => [label, answers.reduce((n, a) => n + a.distribution[i]!, 0)]));
          const worstOfAll = answers.flatMap((a) => a.worst).sort((a, b) => a.score - b.score).slice(0, worst);
          const body = { devices, mean_score: devices ? Math.round((sum / devices) * 10) / 10 : null, distribution, worst: worstOfAll };
          return ['200 OK', missing > 0 ? { ...body, incomplete: `${missing} instance(s) did not answer` } : body];
        }, r.aborted);
      },
    }),
    route({
      method: 'GET',
      path: '/alerts',
      summary: 'Alerts, newest first, filtered by state, device and severity (and to the devices the key may read)',
      action: 'fleet.read',
      device: 'none',
      query: alertsQuery,
      ok: '200',
      handle(res, r) {
        const q = r.query;
        if (q.device_id !== undefined) {
          const decision = r.authorize(q.device_id);
          if (!decision.ok) return sendJson(res, ...r.forbidden(decision.message));
        }
        const limit = deviceLimit(r.principal);
        respondLater(res, async () => {
          const page = await listAlerts(database.db, {
            state: q.state,
            deviceId: q.device_id,
            deviceIds: limit === null ? undefined : [...limit],
            severity: q.severity,
            limit: q.limit,
            before: q.before ? Date.parse(q.before) : undefined,
          });
          const alerts = page.alerts.map(alertData);
          return ['200 OK', { alerts, has_more: page.hasMore, next_before: page.hasMore ? alerts.at(-1)?.raised_at : null }];
        }, r.aborted);
      },
    }),
    route({
      method: 'POST',
      path: '/alerts/{alert_id}/ack',
      summary: "Acknowledge an alert (the key must be allowed the alert's device)",
      action: 'alert.ack',
      // The alert's device is known only to the instance holding the alert.
      device: 'handler',
      body: ackBody,
      optionalBody: true,
      ok: '200',
      answers: { '404': 'No such alert, or not active', '503': 'The instance holding the alert did not answer (owner_unavailable)' },
      handle(res, r) {
        const alertId = r.params[0]!;
        respondLater(res, async () => {
          // Whichever instance holds the alert acknowledges it, once the policy allows its device.
          const outcome = await hub.acknowledgeAlertAnywhere(alertId, r.body.by ?? 'api', (deviceId) => r.authorize(deviceId).ok);
          if (outcome === 'forbidden') return r.forbidden("this key may not use this alert's device");
          return outcome ? ['200 OK', outcome] : ['404 Not Found', { detail: `Alert ${alertId.slice(0, 64)} not found or not active` }];
        }, r.aborted);
      },
    }),
  ];
}
