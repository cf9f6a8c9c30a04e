import { SEVERITIES } from '../domain/alert-rules.js';
import type { Metrics } from '../metrics.js';
import type { Insights } from './insights.js';

/**
 * `vigil_alerts_active{severity}`, counted from the alerts this hub holds before each scrape (not on
 * each transition), so it is right after a restart restored them too, and every severity is present
 * (0 included) for dashboards.
 */
export function watchAlertGauges(insights: Insights, metrics: Metrics): void {
  const counts = new Map<string, number>();
  metrics.beforeCollect(() => {
    for (const severity of SEVERITIES) counts.set(severity, 0);
    for (const alert of insights.allActiveAlerts()) counts.set(alert.severity, (counts.get(alert.severity) ?? 0) + 1);
    for (const [severity, n] of counts) metrics.alertsActive.set({ severity }, n);
  });
}
