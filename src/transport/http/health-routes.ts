import { z } from 'zod';
import { SEVERITIES } from '../../domain/alert-rules.js';
import { isDeviceId } from '../../domain/device-id.js';
import type { Hub } from '../../hub/hub.js';
import type { Database } from '../../storage/database.js';
import { listAlerts } from '../../storage/alert-repository.js';
import { deviceLimit } from '../../security/policy.js';
import { route, type Route } from './router.js';
import { respondLater, sendJson } from './respond.js';
import { OWNER_UNAVAILABLE, ownerReadRoute } from './owner-read.js';
import { alertData } from '../../domain/representations.js';
import type { FleetHistory } from '../../hub/fleet-history.js';

export const alertsQuery = z.object({
  state: z.enum(['active', 'raised', 'acknowledged', 'cleared', 'all']).default('active'),
  device_id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/).optional(),
  severity: z.enum(SEVERITIES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.iso.datetime({ offset: true }).optional(),
});

export const fleetHistoryQuery = z.object({ since: z.iso.datetime({ offset: true }).optional() });
export const healthDevicesQuery = z.object({ worst: z.coerce.number().int().min(1).max(1000).default(10) });
export const ackBody = z.object({ by: z.string().min(1).max(100).optional() }).strict();


const BUCKETS = ['0-20', '20-40', '40-60', '60-80', '80-100'];

/**
 * Health scores, rolling metrics and alerts over REST. Scores and live alerts are held by the
 * instance that owns a device (one instance unless clustered): each in-memory read is an owner API
 * call answered there (src/hub/health-views.ts), so any instance answers alike.
 */
/** METRIC_UNITS as a map (the schema checked its form). */
export function metricUnits(setting: string | undefined): Record<string, string> {
  const units: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const pair of setting ? setting.split(',') : []) {
    const [name, unit] = pair.split('=');
    units[name!.trim()] = unit!.trim();
  }
  return units;
}

export function healthRoutes(hub: Hub, database: Database, history: FleetHistory, units: Record<string, string> = {}): Route[] {
  return [
    route({
      method: 'GET',
      path: '/metric-units',
      summary: 'Units of sensor metrics set with METRIC_UNITS (name → unit), added to the dashboard\'s built-in ones',
      action: 'public',
      device: 'none',
      ok: '200',
      handle: (res) => sendJson(res, '200 OK', { units }),
    }),
    route({
      method: 'GET',
      path: '/fleet/history',
      summary: 'Online, offline and unknown device counts over the last 24 h, sampled every FLEET_COUNTS_SAMPLE_MS (by this instance; fleet-wide, so not for keys limited to devices)',
      action: 'fleet.feed',
      device: 'none',
      query: fleetHistoryQuery,
      ok: '200',
      handle(res, r) {
        const since = r.query.since === undefined ? null : Date.parse(r.query.since);
        sendJson(res, '200 OK', { interval_s: history.intervalMs / 1000, samples: history.columns(since) });
      },
    }),
    ownerReadRoute({ path: '/devices/{device_id}/metrics/summary', summary: 'Rolling metrics: recent and last 24 h', known: isDeviceId, read: (id) => hub.owner.metricsSummary(id) }),
    ownerReadRoute({ path: '/devices/{device_id}/health', summary: 'Health score, components and 24 h trend', known: isDeviceId, read: (id) => hub.owner.health(id) }),
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
          const { answers, missing } = await hub.owner.fleetHealth(worst, limit === null ? null : [...limit]);
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
