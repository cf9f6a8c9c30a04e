import type { Config } from './config.js';
import { Faults } from './errors/boundary.js';
import type { Hub } from './hub/hub.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { loadedUwsBuild, loadUws } from './transport/uws.js';
import type { Route } from './transport/http/router.js';
import { VERSION } from './version.js';
import { logAccess, startAccess } from './compose/access.js';
import { joinCluster } from './compose/cluster.js';
import type { StartContext } from './compose/context.js';
import { startHubCore } from './compose/hub-core.js';
import { Lifecycle } from './compose/lifecycle.js';
import { connectMqtt, ingestEntry, startIngest } from './compose/mqtt.js';
import { readinessChecks, startServing } from './compose/serving.js';
import { startStorage } from './compose/storage.js';

export { embeddedBrokerMaxPacket } from './config.js';

export interface RunningHub {
  readonly hub: Hub;
  readonly config: Config;
  readonly metrics: Metrics;
  /** The hub's error boundaries (main.ts reports process-level faults here too). */
  readonly faults: Faults;
  /** The HTTP/WebSocket port actually bound (PORT=0 picks a free one). */
  readonly port: number;
  readonly host: string;
  /** The broker the hub ingests from (the embedded one's address when MQTT_URL is unset). */
  readonly mqttUrl: string;
  readonly parts: { readonly broker: string; readonly storage: string; readonly presence: string; readonly fanout: string };
  /** Cluster mode: this instance's id (null when single-instance). */
  readonly instanceId: string | null;
  /** The REST route table (method, path, policy entry), for tests generated from it. */
  readonly routes: readonly Route[];
  stop(): Promise<void>;
}

/**
 * The composition root: starts each part from the configuration (embedded when its URL is unset)
 * in dependency order — storage, cluster, the hub core, access, serving, MQTT — and stops them in
 * reverse. Each part's factory is in src/compose/ (docs/architecture.md).
 */
export async function startHub(config: Config, log: Logger): Promise<RunningHub> {
  loadUws();
  const build = loadedUwsBuild();
  log.info({ uws: build }, `uWebSockets.js ${build.version} (${build.dependency})`);
  const metrics = createMetrics();
  metrics.buildInfo.set({ version: VERSION, commit: config.BUILD_COMMIT ?? '', node: process.version, uws_build: `${build.dependency}@${build.version}` }, 1);
  const faults = new Faults(log, metrics);
  const life = new Lifecycle(log);
  const ctx: StartContext = { config, life, log, metrics, faults };
  try {
    const storage = await startStorage(ctx);
    const cluster = await joinCluster(ctx);
    const mqtt = await connectMqtt(ctx, storage.writer, cluster?.instanceId ?? null);
    const core = await startHubCore(ctx, storage, cluster, mqtt.outlets);
    const ingest = ingestEntry(ctx, core, mqtt, cluster);
    const access = await startAccess(ctx, storage.database);
    const checks = readinessChecks(storage, core, cluster, mqtt.connection);
    const serving = await startServing(ctx, storage, core, cluster, access, ingest, checks);
    await startIngest(ctx, core, mqtt, ingest, cluster);

    const { database } = storage;
    const parts = {
      broker: mqtt.description,
      storage: database.kind === 'pglite' ? `embedded PGlite in ${config.DATA_DIR}` : 'PostgreSQL',
      presence: core.presence.kind === 'memory' ? 'in-process deadline heap' : 'Redis key expiry + deadline sweep',
      fanout: cluster === null ? 'in-process (single instance)' : `Redis pub/sub, instance ${cluster.instanceId} of ${cluster.membership.list.length} (every instance reads every device topic)`,
    };
    log.info({ parts, ws: `ws://${config.HOST}:${serving.port}/ws` }, `Vigil listening on http://${config.HOST}:${serving.port}`);
    logAccess(config, access, log);
    return {
      hub: core.hub,
      config,
      metrics,
      faults,
      port: serving.port,
      host: config.HOST,
      mqttUrl: mqtt.url,
      parts,
      instanceId: cluster?.instanceId ?? null,
      routes: serving.routes,
      stop: () => life.stop(),
    };
  } catch (error) {
    await life.stop();
    throw error;
  }
}
