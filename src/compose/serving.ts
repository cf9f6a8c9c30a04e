import { queryBounds, webSocketLimits } from '../config.js';
import { summaryPeers } from '../cluster/summary-peers.js';
import type { Route } from '../transport/http/router.js';
import { mountRoutes } from '../transport/http/router.js';
import { adminRoutes } from '../transport/http/admin-routes.js';
import { commandRoutes } from '../transport/http/command-routes.js';
import type { HttpSecurity } from '../transport/http/guard.js';
import { healthRoutes, metricUnits } from '../transport/http/health-routes.js';
import { FleetHistory } from '../hub/fleet-history.js';
import { ingestRoutes } from '../transport/http/ingest-routes.js';
import { notificationRoutes } from '../transport/http/notification-routes.js';
import { openApiRoute } from '../transport/http/openapi.js';
import { probeRoutes, type ReadinessCheck } from '../transport/http/probes.js';
import { ruleRoutes } from '../transport/http/rule-routes.js';
import { dashboardRoutes } from '../transport/http/static-files.js';
import { statusRoutes } from '../transport/http/status-routes.js';
import { RateLimiter } from '../security/rate-limiter.js';
import { loadUws, type us_listen_socket } from '../transport/uws.js';
import { attachWebSocket } from '../transport/ws-server.js';
import { VERSION } from '../version.js';
import type { Access } from './access.js';
import type { ClusterParts } from './cluster.js';
import type { StartContext } from './context.js';
import type { HubCore } from './hub-core.js';
import type { IngestParts } from './mqtt.js';
import type { Storage } from './storage.js';

export interface Serving {
  /** The HTTP/WebSocket port actually bound (PORT=0 picks a free one). */
  readonly port: number;
  /** The REST route table (method, path, policy entry). */
  readonly routes: readonly Route[];
}

/** Readiness: the broker connection, storage, presence and (in cluster mode) the Redis connections instances talk over. */
export function readinessChecks(storage: Storage, core: HubCore, cluster: ClusterParts | null, broker: { readonly connected: boolean }): ReadinessCheck[] {
  const { database, writer } = storage;
  const checks: ReadinessCheck[] = [
    { name: 'broker', check: async () => ({ ok: broker.connected, detail: broker.connected ? 'connected' : 'not connected' }) },
    {
      name: 'storage',
      check: async () => {
        const { depth, retrying } = writer.stats();
        await database.ping();
        return { ok: !retrying, detail: `${database.kind}; write queue ${depth} rows${retrying ? ', writes failing and retrying' : ''}` };
      },
    },
    { name: 'presence', check: async () => core.presence.health() },
  ];
  if (cluster !== null) {
    const { bus, membership } = cluster;
    // Frames to other instances, forwards and owner queries all ride on these connections.
    checks.push({ name: 'cluster', check: async () => ({ ok: bus.ready, detail: bus.ready ? `${membership.list.length} instance(s): ${membership.list.join(', ')}` : 'redis connections down' }) });
  }
  return checks;
}

/**
 * The REST API, the dashboard and /ws on one uWebSockets.js app, listening once the fan-out
 * delivers to the WebSocket clients. At stop, clients are closed first (stops run in reverse), so
 * data still arriving is flushed by the writer afterwards.
 */
export async function startServing(ctx: StartContext, storage: Storage, core: HubCore, cluster: ClusterParts | null, access: Access, ingest: IngestParts, checks: readonly ReadinessCheck[]): Promise<Serving> {
  const { config, life, log, metrics, faults } = ctx;
  const { hub, presence, fanout, rules } = core;
  const { database, notifications } = storage;
  const uws = loadUws();
  const app = uws.App();
  const refused = (code: string) => metrics.httpRefused.inc({ code });
  const security: HttpSecurity = {
    keys: access.keys,
    jwt: access.jwt,
    authRequired: access.policy.authRequired,
    limiter: new RateLimiter(config.HTTP_RATE_PER_S, config.HTTP_RATE_BURST),
    corsOrigins: access.corsOrigins,
    hostAllowed: access.hostAllowed,
    maxBodyBytes: config.HTTP_MAX_BODY_BYTES,
    metrics,
    maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
    faults,
  };
  // The fleet's counts over the last 24 h, as this instance's registry keeps them (docs/api.md#fleet-history).
  const history = new FleetHistory(() => hub.registry.totals(), config.FLEET_COUNTS_SAMPLE_MS);
  history.start();
  life.onStop(() => history.stop());
  const routes: Route[] = [
    ...probeRoutes(checks, metrics),
    ...statusRoutes({ hub, presence, database, bounds: { ...queryBounds(config), refused } }),
    ...healthRoutes(hub, database, history, metricUnits(config.METRIC_UNITS)),
    ...ingestRoutes(hub, ingest.entry, database, config),
    ...adminRoutes(access.keys, access.tokens, log),
    ...ruleRoutes(rules, refused),
    ...commandRoutes(hub, database),
    ...notificationRoutes(database.db, notifications?.planner.sinks.map((s) => ({ name: s.name, target: s.target })) ?? []),
    ...dashboardRoutes(),
  ];
  routes.push(openApiRoute(routes, VERSION));
  const ws = attachWebSocket(app, hub, webSocketLimits(config), log, metrics, { ...access.policy.ws, keys: access.keys, hostAllowed: access.hostAllowed, corsOrigins: access.corsOrigins }, faults);
  // After /ws: every other request goes through the route table.
  mountRoutes(app, routes, security);
  await fanout.start(ws.delivery, (deviceId, storedSeq) => hub.fenced(deviceId, storedSeq));
  life.onStop(() => fanout.stop());
  hub.summaries.publish = ws.publishSummary;
  const peers = cluster === null ? null : await summaryPeers(cluster.bus, config.REDIS_KEY_PREFIX, cluster.instanceId, metrics);
  hub.summaries.start({ intervalMs: config.FLEET_SUMMARY_INTERVAL_MS, chunk: config.FLEET_SUMMARY_CHUNK, paceBytes: config.WS_LAG_BYTES / 4 }, peers);
  life.onStop(() => hub.summaries.stop());

  const listenSocket = await listen(app, config.HOST, config.PORT);
  life.onStop(() => {
    ws.stop();
    uws.us_listen_socket_close(listenSocket);
  });
  // Runs before the writer closes (stops are reversed): clients go first, then data is flushed.
  life.onStop(() => ws.closeAll());
  return { port: uws.us_socket_local_port(listenSocket), routes };
}

function listen(app: ReturnType<ReturnType<typeof loadUws>['App']>, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`cannot listen on ${host}:${port} (PORT in use or HOST not an address of this machine)`));
    });
  });
}
