import type { FleetPart, OwnerHandlers } from '../cluster/owner-api/index.js';
import { healthData, iso } from '../domain/representations.js';
import { healthTrend } from '../storage/alert-repository.js';
import type { VigilDb } from '../storage/database.js';
import type { Insights } from './insights.js';

/**
 * Health scores and rolling metrics as the REST API shows them. They are held by the instance that
 * owns a device, so each read is an owner API call answered here, by the owner, whichever instance
 * the request reached (src/transport/http/health-routes.ts).
 */
export function healthOperations(insights: Insights, db: VigilDb, now: () => number = Date.now): Pick<OwnerHandlers, 'metricsSummary' | 'health' | 'fleetHealth'> {
  return {
    metricsSummary: (id) => {
      const summary = insights.metricsSummary(id, now());
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
    },
    health: async (id) => {
      const health = insights.health(id);
      if (health === null) return null;
      const points = await healthTrend(db, id, now() - 86_400_000);
      const first = points[0]?.score ?? health.score;
      const delta = Math.round((health.score - first) * 10) / 10;
      return { device_id: id, ...healthData(health), trend: { direction: delta > 1 ? 'up' : delta < -1 ? 'down' : 'flat', change_24h: delta, points: points.map((p) => ({ timestamp: iso(p.at), score: p.score })) } };
    },
    // `only`: the devices of a key limited to some (null: all), so a limited key sees its own fleet.
    fleetHealth: (_all, { worst, only }) => {
      const allowed = only === null ? null : new Set(only);
      const scores = insights.healthOfAll().filter((s) => allowed === null || allowed.has(s.deviceId));
      const distribution = [0, 0, 0, 0, 0];
      for (const s of scores) distribution[Math.min(4, Math.floor(s.score / 20))]!++;
      const part: FleetPart = {
        devices: scores.length,
        sum: scores.reduce((n, s) => n + s.score, 0),
        distribution,
        worst: scores.sort((a, b) => a.score - b.score).slice(0, worst).map((s) => ({ device_id: s.deviceId, score: s.score })),
      };
      return part;
    },
  };
}
