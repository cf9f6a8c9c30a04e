import { hubSettings, initialRuleSet, retentionSettings } from '../config.js';
import { takeLease } from '../cluster/lease.js';
import type { Fanout } from '../fanout/fanout.js';
import { watchAlertGauges } from '../hub/alert-gauges.js';
import { watchDeviceBounds } from '../hub/device-bounds.js';
import { healthOperations } from '../hub/health-views.js';
import { Hub } from '../hub/hub.js';
import type { Outlets } from '../hub/outlets.js';
import { RuleStore } from '../hub/rule-store.js';
import { scheduleHealthSweeps } from '../jobs/health-sweep.js';
import { scheduleRetention } from '../jobs/retention-job.js';
import type { PresenceStore } from '../presence/presence-store.js';
import type { ClusterParts } from './cluster.js';
import type { StartContext } from './context.js';
import { createFanout, createPresence } from './delivery.js';
import { restoreState } from './restore-state.js';
import type { Storage } from './storage.js';

/** Longest the presence store waits for the start-up reconcile before it judges expiries anyway. */
const RECONCILE_WAIT_MS = 10_000;

const delay = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

export interface HubCore {
  readonly hub: Hub;
  readonly presence: PresenceStore;
  readonly fanout: Fanout;
  readonly rules: RuleStore;
  /**
   * Presence is judged once the broker has delivered what it queued for this hub while it was
   * away (docs/presence.md): the MQTT part calls this when its backlog marker is read (or the wait
   * ran out). Until then queued readings count at their own time, and no device is reconciled.
   */
  readonly backlogRead: () => void;
}

/**
 * The hub and what it depends on and drives: presence, fan-out, rules, restored state, sweeps,
 * retention, notifications' delivery. Nothing is ingested yet: that starts with the MQTT part's
 * second phase; its outlets (commands, availability) come from the first.
 */
export async function startHubCore(ctx: StartContext, storage: Storage, cluster: ClusterParts | null, outlets: Outlets): Promise<HubCore> {
  const { config, life, log, metrics, faults } = ctx;
  const { database, writer, notifications } = storage;
  const lease = (name: string, ttlMs: number) =>
    cluster === null ? async () => true : () => takeLease(cluster.bus.commands, `${config.REDIS_KEY_PREFIX}cluster:lease:${name}`, cluster.instanceId, ttlMs);
  const retention = scheduleRetention(database, retentionSettings(config), config.RETENTION_CRON, log, faults, cluster === null ? undefined : lease('retention', 10 * 60_000));
  life.onStop(() => retention.stop());

  const presence = createPresence(config, log, faults);
  const fanout = await createFanout(config, cluster, log, metrics, faults);
  const hub = new Hub({
    ...hubSettings(config),
    fanout,
    presence,
    sink: writer,
    metrics,
    faults,
    outlets,
    ...(cluster === null ? {} : { cluster: cluster.cluster }),
  });
  hub.owner.serve(healthOperations(hub.insights, database.db));
  // The rule set in force before the first message (ALERT_RULES stored as a version when it changed).
  const rules = new RuleStore({ db: database.db, insights: hub.insights, owner: hub.owner, log, metrics, faults, pollMs: config.RULES_POLL_S * 1000 });
  life.onStop(() => rules.stop());
  await rules.start(initialRuleSet(config));
  await restoreState(hub, database, log, cluster === null || cluster.membership.list.length <= 1);
  if (notifications !== null) {
    await notifications.start({
      db: database.db,
      deviceTypeOf: (deviceId) => hub.registry.get(deviceId)?.type ?? null,
      instanceId: cluster?.instanceId ?? null,
      mayResend: lease('alertmanager-resend', config.ALERTMANAGER_RESEND_S * 1000 - 500),
    });
    life.onStop(() => notifications.stop());
  }
  life.onStop(watchDeviceBounds(hub.registry, metrics, log));
  watchAlertGauges(hub.insights, metrics);
  const sweeps = scheduleHealthSweeps(hub, config.HEALTH_SWEEP_CRON, config.OFFLINE_ALERT_CHECK_S * 1000, log, faults);
  life.onStop(() => sweeps.stop());

  let backlogRead!: () => void;
  const judgeAfter = new Promise<void>((resolve) => {
    backlogRead = resolve;
  });
  hub.readingBacklog = true;
  // A cluster that had no live member kept no presence and, on clean sessions, no broker queue:
  // devices whose keys expired meanwhile get CLUSTER_START_GRACE_S to be heard again before they
  // are judged (docs/presence.md, "A whole cluster restarted").
  const alone = cluster !== null && cluster.membership.list.length <= 1;
  const graceMs = alone ? config.CLUSTER_START_GRACE_S * 1000 : 0;
  hub.presence.beginGrace(graceMs);
  life.onStop(() => hub.presence.endGrace());
  const reconciled = judgeAfter.then(() => {
    hub.readingBacklog = false;
    return hub.reconcile().then(
      (result) => log.info(result, 'presence reconciled after the broker backlog'),
      (error: Error) => log.error({ err: error.message }, 'presence reconcile failed; expiries still judge every device'),
    );
  });
  // Expiries are judged once the reconcile has answered, so a device whose key expired while the
  // hub was away is reported as `reconcile` (not observed live), never as a live `timeout`; bounded,
  // so a presence store that stalls cannot hold judging back.
  const judging = reconciled.then(() => undefined);
  const bounded = judgeAfter.then(() => Promise.race([judging, delay(RECONCILE_WAIT_MS)]));
  await presence.start(hub, bounded);
  life.onStop(() => presence.stop());
  return { hub, presence, fanout, rules, backlogRead };
}
