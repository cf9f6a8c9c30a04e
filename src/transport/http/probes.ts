import type { Metrics } from '../../metrics.js';
import type { TemplatedApp } from '../uws.js';
import type { Guard } from './guard.js';
import { failRequest, sendJson, watchAbort, writeCommonHeaders } from './respond.js';

/** One dependency /readyz asks about; `detail` says what is wrong when it is not ok. */
export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<{ ok: boolean; detail: string }>;
}

const READINESS_TIMEOUT_MS = 2000;

/** Probes and metrics. Mounted before the catch-all 404. */
export function attachHttpRoutes(app: TemplatedApp, checks: readonly ReadinessCheck[], metrics: Metrics, guard: Guard): void {
  app.get('/healthz', guard(null, (res, req, ctx) => {
    sendJson(res, '200 OK', { status: 'ok' });
  }));

  app.get('/readyz', guard(null, (res, req, ctx) => {
    const aborted = watchAbort(res);
    void Promise.all(checks.map(runCheck)).then((results) => {
      if (aborted.value) return;
      const parts = Object.fromEntries(results.map((r) => [r.name, { ok: r.ok, detail: r.detail }]));
      const failing = results.filter((r) => !r.ok).map((r) => r.name);
      res.cork(() => {
        sendJson(res, failing.length === 0 ? '200 OK' : '503 Service Unavailable', {
          status: failing.length === 0 ? 'ready' : 'not_ready',
          failing,
          checks: parts,
        });
      });
    }).catch((error: unknown) => failRequest(res, error, aborted));
  }));

  app.get('/metrics', guard('read', (res, req, ctx) => {
    const aborted = watchAbort(res);
    void metrics.scrape().then((text) => {
      if (aborted.value) return;
      res.cork(() => {
        res.writeStatus('200 OK').writeHeader('content-type', metrics.registry.contentType);
        writeCommonHeaders(res);
        res.end(text);
      });
    }).catch((error: unknown) => failRequest(res, error, aborted));
  }));

  for (const path of ['/healthz', '/readyz', '/metrics']) {
    app.any(path, (res) => {
      sendJson(res, '405 Method Not Allowed', { error: { code: 'method_not_allowed', message: 'use GET' } }, { allow: 'GET' });
    });
  }
}

/** The last route: every unknown path gets a JSON 404. */
export function attachNotFound(app: TemplatedApp, guard: Guard): void {
  app.any('/*', guard(null, (res, req) => {
    const path = req.getUrl();
    sendJson(res, '404 Not Found', { error: { code: 'not_found', message: `no route for ${path.slice(0, 200)}` } });
  }));
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
