import { z } from 'zod';
import { SEVERITIES } from '../../domain/alert-rules.js';
import { isDeviceId } from '../../domain/device-id.js';
import { alertData, healthData } from '../../hub/frames.js';
import type { Hub } from '../../hub/hub.js';
import type { Database } from '../../storage/database.js';
import { healthTrend, listAlerts } from '../../storage/alert-repository.js';
import { mayRead } from '../../security/api-keys.js';
import type { TemplatedApp } from '../uws.js';
import type { Guard } from './guard.js';
import { readJsonBody, respondLater, sendDeviceForbidden, sendDeviceNotFound, sendJson, validationError } from './respond.js';

export const alertsQuery = z.object({
  state: z.enum(['active', 'raised', 'acknowledged', 'cleared', 'all']).default('active'),
  device_id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/).optional(),
  severity: z.enum(SEVERITIES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.iso.datetime({ offset: true }).optional(),
});

export const healthDevicesQuery = z.object({ worst: z.coerce.number().int().min(1).max(1000).default(10) });
export const ackBody = z.object({ by: z.string().min(1).max(100).optional() }).strict();

const iso = (ms: number) => new Date(ms).toISOString();
const query = (text: string) => Object.fromEntries(new URLSearchParams(text));

/** Health scores, rolling metrics and alerts over REST. */
export function attachHealthRoutes(app: TemplatedApp, hub: Hub, database: Database, maxBodyBytes: number, guard: Guard): void {
  app.get('/devices/:id/metrics/summary', guard('read', (res, req, ctx) => {
    const id = decodeURIComponent(req.getParameter(0) ?? '');
    if (!mayRead(ctx.principal, id)) return sendDeviceForbidden(res);
    const summary = isDeviceId(id) ? hub.insights.metricsSummary(id, Date.now()) : null;
    if (summary === null) return sendDeviceNotFound(res, id);
    const view = (s: typeof summary.recent) => ({
      message_count: s.count,
      avg_response_time_ms: s.avgResponseTimeMs,
      max_response_time_ms: s.maxResponseTimeMs,
      avg_error_rate: s.avgErrorRate,
      avg_battery_level: s.avgBattery,
      avg_rssi: s.avgRssi,
    });
    sendJson(res, '200 OK', { device_id: id, recent: view(summary.recent), last_24h: { ...view(summary.last24h), uptime_ratio: summary.uptime24h } });
  }));

  app.get('/devices/:id/health', guard('read', (res, req, ctx) => {
    const id = decodeURIComponent(req.getParameter(0) ?? '');
    if (!mayRead(ctx.principal, id)) return sendDeviceForbidden(res);
    const health = isDeviceId(id) ? hub.insights.health(id) : null;
    if (health === null) return sendDeviceNotFound(res, id);
    respondLater(res, async () => {
      const points = await healthTrend(database.db, id, Date.now() - 86_400_000);
      const first = points[0]?.score ?? health.score;
      const delta = Math.round((health.score - first) * 10) / 10;
      return ['200 OK', { device_id: id, ...healthData(health), trend: { direction: delta > 1 ? 'up' : delta < -1 ? 'down' : 'flat', change_24h: delta, points: points.map((p) => ({ timestamp: iso(p.at), score: p.score })) } }];
    });
  }));

  app.get('/health/devices', guard('read', (res, req, ctx) => {
    const parsed = healthDevicesQuery.safeParse(query(req.getQuery() ?? ''));
    if (!parsed.success) return sendJson(res, '422 Unprocessable Entity', validationError('query', parsed.error));
    const scores = hub.insights.healthOfAll();
    const distribution: Record<string, number> = { '0-20': 0, '20-40': 0, '40-60': 0, '60-80': 0, '80-100': 0 };
    const labels = Object.keys(distribution);
    for (const s of scores) distribution[labels[Math.min(4, Math.floor(s.score / 20))]!]!++;
    const worst = scores.sort((a, b) => a.score - b.score).slice(0, parsed.data.worst).map((s) => ({ device_id: s.deviceId, score: s.score }));
    const mean = scores.length ? Math.round((scores.reduce((n, s) => n + s.score, 0) / scores.length) * 10) / 10 : null;
    sendJson(res, '200 OK', { devices: scores.length, mean_score: mean, distribution, worst });
  }));

  app.get('/alerts', guard('read', (res, req, ctx) => {
    const parsed = alertsQuery.safeParse(query(req.getQuery() ?? ''));
    if (!parsed.success) return sendJson(res, '422 Unprocessable Entity', validationError('query', parsed.error));
    const q = parsed.data;
    respondLater(res, async () => {
      const page = await listAlerts(database.db, {
        state: q.state,
        deviceId: q.device_id,
        severity: q.severity,
        limit: q.limit,
        before: q.before ? Date.parse(q.before) : undefined,
      });
      const alerts = page.alerts.map(alertData);
      return ['200 OK', { alerts, has_more: page.hasMore, next_before: page.hasMore ? alerts.at(-1)?.raised_at : null }];
    });
  }));

  app.post('/alerts/:id/ack', guard('command', (res, req, ctx) => {
    const alertId = decodeURIComponent(req.getParameter(0) ?? '');
    readJsonBody(res, maxBodyBytes, (body, aborted) => {
      const parsed = body.ok && body.value !== null ? ackBody.safeParse(body.value) : ackBody.safeParse({});
      if (!parsed.success) return res.cork(() => sendJson(res, '422 Unprocessable Entity', validationError('body', parsed.error)));
      if (aborted.value) return;
      const alert = hub.acknowledgeAlert(alertId, parsed.data.by ?? 'api');
      res.cork(() => {
        if (alert === null) sendJson(res, '404 Not Found', { detail: `Alert ${alertId.slice(0, 64)} not found or not active` });
        else sendJson(res, '200 OK', alertData(alert));
      });
    }, true);
  }));
}
