import type { Metrics } from '../../metrics.js';
import { route, type Route } from './router.js';
import { failRequest, sendJson, writeCommonHeaders } from './respond.js';

/** One dependency /readyz asks about; `detail` says what is wrong when it is not ok. */
export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<{ ok: boolean; detail: string }>;
}

const READINESS_TIMEOUT_MS = 2000;

/** Probes and metrics. */
export function probeRoutes(checks: readonly ReadinessCheck[], metrics: Metrics): Route[] {
  return [
    route({
      method: 'GET',
      path: '/healthz',
      summary: 'Process alive',
      action: 'public',
      device: 'none',
      ok: '200',
      handle(res) {
        sendJson(res, '200 OK', { status: 'ok' });
      },
    }),
    route({
      method: 'GET',
      path: '/readyz',
      summary: 'Broker, storage and presence reachable (503 names the failing part)',
      action: 'public',
      device: 'none',
      ok: '200',
      handle(res, r) {
        void Promise.all(checks.map(runCheck)).then((results) => {
          if (r.aborted.value) return;
          const parts = Object.fromEntries(results.map((c) => [c.name, { ok: c.ok, detail: c.detail }]));
          const failing = results.filter((c) => !c.ok).map((c) => c.name);
          res.cork(() => {
            sendJson(res, failing.length === 0 ? '200 OK' : '503 Service Unavailable', {
              status: failing.length === 0 ? 'ready' : 'not_ready',
              failing,
              checks: parts,
            });
          });
        }).catch((error: unknown) => failRequest(res, error, r.aborted));
      },
    }),
    route({
      method: 'GET',
      path: '/metrics',
      summary: 'Prometheus metrics (fleet-wide: not for keys limited to devices)',
      action: 'metrics.read',
      device: 'none',
      ok: '200',
      handle(res, r) {
        void metrics.scrape().then((text) => {
          if (r.aborted.value) return;
          res.cork(() => {
            res.writeStatus('200 OK').writeHeader('content-type', metrics.registry.contentType);
            writeCommonHeaders(res);
            res.end(text);
          });
        }).catch((error: unknown) => failRequest(res, error, r.aborted));
      },
    }),
  ];
}

async function runCheck(check: ReadinessCheck): Promise<{ name: string; ok: boolean; detail: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ok: boolean; detail: string }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${READINESS_TIMEOUT_MS} ms` }), READINESS_TIMEOUT_MS);
  });
  try {
    const result = await Promise.race([check.check(), timeout]);
    return { name: check.name, ...result };
  } catch (error) {
    return { name: check.name, ok: false, detail: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
