import { EwmaStats, isBack, isPast, type Severity } from '../domain/alert-rules.js';
import type { CompiledRuleSet } from '../domain/compiled-rules.js';
import { DenseRows, RowNumbers } from '../domain/dense-rows.js';
import { healthFrom, PACKED_HEALTH_WIDTH, scoreInto, type Weights } from '../domain/health-score.js';
import { RollingMetricsTable } from '../domain/rolling-metrics.js';
import type { Telemetry } from '../domain/telemetry.js';
import { AlertBook } from './alert-book.js';
import { inSlices } from '../jobs/in-slices.js';
import { DeadlineHeap } from '../presence/deadline-heap.js';
import { RestoredScores } from './restored-scores.js';
import type { InsightSink } from './alert-types.js';
import { dropRemoved, escalate, judgeStaleness, readRule, type RuleState } from './rule-evaluation.js';
import type { Alert, ScoredHealth } from '../domain/alert.js';
import type { DeviceState } from '../domain/device-state.js';

export type { InsightSink } from './alert-types.js';

export interface InsightOptions {
  readonly weights: Weights;
  /** A score is pushed and stored when it moved at least this much since the last one pushed. */
  readonly step: number;
  /** Per device, scoring on telemetry happens at most this often (the sweep catches the rest). */
  readonly minScoreIntervalMs: number;
  /** The rule set in force at start (the rule store replaces it as versions change). */
  readonly rules: CompiledRuleSet;
  /** Sensor metrics watched by the z-score detector, and its threshold. */
  readonly zscoreMetrics: readonly string[];
  readonly zscoreThreshold: number;
  /** A device offline this long raises `device_offline`. */
  readonly offlineAlertMs: number;
  readonly timeoutMsOf: (state: DeviceState) => number;
}

interface DeviceInsight extends RuleState {
  zstats: Map<string, EwmaStats> | null;
}

/**
 * A device's numbers in its row of `Insights.numbers` (NaN: none): when it was first seen, online
 * time accounted up to, offline since, the score last pushed, last scored, and its newest score
 * (when, then the score packed by `scoreInto`).
 */
const N = { firstSeen: 0, accountedAt: 1, offlineSince: 2, pushed: 3, scoredAt: 4, healthAt: 5, health: 6 } as const;
const NUMBERS = N.health + PACKED_HEALTH_WIDTH;
const NO_ALERTS: ReadonlyMap<string, Alert> = new Map();

type Verdict = { readonly kind: 'raise'; readonly since: number } | { readonly kind: 'clear'; readonly alert: Alert };

const OFFLINE = 'device_offline';
const ZSCORE_CLEAR = 2;
/** Devices one sweep handles per event-loop turn (a few milliseconds of scoring). */
const SWEEP_SLICE = 500;

/**
 * Rolling metrics, health scores and anomaly alerts, per device, updated as telemetry arrives in
 * O(1) per message. Alerts: one active per (device, type); hysteresis and minimum duration from the
 * rule; acknowledged by an admin; telemetry alerts are held (neither cleared nor raised) while a
 * device is offline, since nothing is evaluated without telemetry; an outage raises one
 * `device_offline` alert after `offlineAlertMs`, so a flapping device does not storm.
 */
export class Insights {
  private readonly devices = new Map<string, DeviceInsight>();
  /**
   * When each outage's `device_offline` alert is due (offline since + OFFLINE_ALERT_MINUTES), so the
   * offline check looks at the devices that are due, not at the fleet: a look over 1,000,000 devices
   * every OFFLINE_ALERT_CHECK_S took ~5 of every 30 seconds of the hub's time (#21). An entry whose
   * device came back, went again (it has a newer entry) or was deleted is skipped when it surfaces.
   */
  private readonly offlineAlertsDue = new DeadlineHeap();
  private raisingDue = false;
  private readonly rows = new RowNumbers();
  private readonly metrics = new RollingMetricsTable();
  private readonly numbers = new DenseRows(NUMBERS, (n) => new Float64Array(n));
  private readonly book: AlertBook;
  private ruleSet: CompiledRuleSet;

  constructor(
    private readonly opts: InsightOptions,
    private readonly sink: InsightSink,
  ) {
    this.book = new AlertBook(sink);
    this.ruleSet = opts.rules;
    this.restoredHealth = new RestoredScores(opts.weights);
  }

  /** A new rule-set version: it judges the next message of every device. */
  setRules(set: CompiledRuleSet): void {
    this.ruleSet = set;
  }

  get rules(): CompiledRuleSet {
    return this.ruleSet;
  }

  onTelemetry(state: DeviceState, t: Telemetry, now: number): void {
    const d = this.device(state, now);
    this.account(state, d, now);
    this.metrics.add(d.row, t);
    const list = this.ruleSet.rulesFor(state.id, state.type);
    if (d.judgedBy !== list || d.judgedType !== state.type) dropRemoved(this.book, state, d, list, now);
    for (const rule of list.thresholds) {
      if (rule.deviceType !== null && rule.deviceType !== state.type) continue;
      const value = readRule(rule, t, this.metrics, d.row);
      if (value === null) continue;
      const verdict = this.verdict(d, rule.type, isPast(rule, value), isBack(rule, value), rule.forMs, now);
      if (verdict) this.apply(state, d, rule.type, rule.severity, verdict, now, { value, metric: rule.metric, threshold: rule.raise, clear: rule.clear });
      else if (rule.escalation.length > 0) escalate(this.book, state, d, rule, now, value);
    }
    for (const rule of list.stale) if (rule.deviceType === null || rule.deviceType === state.type) judgeStaleness(this.book, this.metrics, state, d, rule, t, now);
    if (this.opts.zscoreMetrics.length > 0 && t.metrics !== null) this.zscores(state, d, t.metrics, now);
    if (now - this.number(d, N.scoredAt) >= this.opts.minScoreIntervalMs) this.rescore(state, d, now);
  }

  /** Call before a device's status changes: online time is accounted up to now. */
  beforeStatusChange(state: DeviceState, now: number): void {
    const d = this.devices.get(state.id);
    if (d) this.account(state, d, now);
  }

  afterStatusChange(state: DeviceState, now: number): void {
    const d = this.device(state, now);
    if (state.status === 'offline') {
      if (Number.isNaN(this.number(d, N.offlineSince))) {
        this.setNumber(d, N.offlineSince, now);
        this.offlineAlertsDue.push(now + this.opts.offlineAlertMs, state.id);
      }
    } else {
      this.setNumber(d, N.offlineSince, NaN);
      const offline = d.active?.get(OFFLINE);
      if (offline) this.clear(state, d, offline, now, {});
    }
    // Not counted against the per-second limit: the telemetry that brought it online follows at once.
    this.rescore(state, d, now, false);
  }

  /**
   * The periodic sweep: re-score quiet devices (freshness decays) and raise due offline alerts, in
   * slices of SWEEP_SLICE devices an event-loop turn (in-slices.ts). Each device is judged at `now`,
   * the sweep's start; a small fleet is swept within the call. A later slice that throws goes to `fault`.
   */
  sweep(
    states: Iterable<DeviceState>,
    now: number,
    rescore: boolean,
    inIncident: (deviceId: string) => boolean = () => false,
    fault: (error: unknown) => void = (error) => {
      throw error;
    },
  ): void {
    inSlices(states[Symbol.iterator](), SWEEP_SLICE, (state) => this.sweepOne(state, now, rescore, inIncident), fault);
  }

  /**
   * Raises the `device_offline` alerts that are due at `now` (the offline check, every
   * OFFLINE_ALERT_CHECK_S), SWEEP_SLICE devices an event-loop turn; a check while one is still going
   * is left to it. `stateOf` gives the device's state where this hub handles it (cluster: owns it).
   */
  raiseDueOfflineAlerts(
    now: number,
    stateOf: (deviceId: string) => DeviceState | undefined,
    inIncident: (deviceId: string) => boolean = () => false,
    fault: (error: unknown) => void = (error) => {
      throw error;
    },
  ): void {
    if (this.raisingDue) return;
    this.raisingDue = true;
    const due = this.offlineAlertsDue;
    const next: Iterator<DeviceState | null> = {
      next: () => {
        if (due.peekDeadline() > now) return { done: true, value: undefined };
        const id = due.peekId()!;
        due.pop();
        return { done: false, value: stateOf(id) ?? null };
      },
    };
    const finished = () => {
      this.raisingDue = false;
    };
    try {
      inSlices(next, SWEEP_SLICE, (state) => this.raiseIfDue(state, now, inIncident), fault, finished);
    } catch (error) {
      finished();
      throw error;
    }
  }

  private raiseIfDue(state: DeviceState | null, now: number, inIncident: (deviceId: string) => boolean): void {
    if (state === null || state.status !== 'offline') return;
    if (inIncident(state.id)) {
      // Covered by a mass-offline incident: looked at again later, so a device still offline once
      // the incident has closed gets its own alert (as when the check went over every device).
      this.offlineAlertsDue.push(now + Math.max(1000, this.opts.offlineAlertMs), state.id);
      return;
    }
    this.sweepOne(state, now, false, inIncident);
  }

  private sweepOne(state: DeviceState, now: number, rescore: boolean, inIncident: (deviceId: string) => boolean): void {
    if (!rescore && state.status !== 'offline') return;
    const d = this.devices.get(state.id);
    if (d === undefined) return;
    this.account(state, d, now);
    const offlineSince = this.number(d, N.offlineSince);
    if (state.status === 'offline' && now - offlineSince >= this.opts.offlineAlertMs && !d.active?.has(OFFLINE) && !inIncident(state.id)) {
      this.raise(state, d, OFFLINE, 'major', now, { offline_since: new Date(offlineSince).toISOString() });
    }
    if (rescore) this.rescore(state, d, now);
  }

  /** The device of an alert held here, or null. */
  alertDevice(alertId: string): string | null {
    return this.book.get(alertId)?.deviceId ?? null;
  }

  acknowledge(alertId: string, by: string, now: number, stateOf: (deviceId: string) => DeviceState): Alert | null {
    return this.book.acknowledge(alertId, by, now, stateOf);
  }

  /** Active alerts restored from storage at start. */
  restoreAlert(alert: Alert): void {
    this.book.restore(alert);
    this.pendingRestore.set(alert.deviceId, [...(this.pendingRestore.get(alert.deviceId) ?? []), alert]);
  }

  restoreHealth(deviceId: string, health: ScoredHealth): void {
    this.restoredHealth.set(deviceId, health);
  }

  health(deviceId: string): ScoredHealth | null {
    const d = this.devices.get(deviceId);
    return d === undefined ? this.restoredHealth.get(deviceId) : this.scored(d);
  }

  /** The newest score of a device, or null (not scored yet). Reads no object. */
  score(deviceId: string): number | null {
    const d = this.devices.get(deviceId);
    if (d === undefined) return this.restoredHealth.score(deviceId);
    return Number.isNaN(this.number(d, N.healthAt)) ? null : this.number(d, N.health);
  }

  activeAlerts(deviceId: string): Alert[] {
    const d = this.devices.get(deviceId);
    return d ? [...(d.active ?? NO_ALERTS).values()] : (this.pendingRestore.get(deviceId) ?? []);
  }

  activeAlertCount(deviceId: string): number {
    const d = this.devices.get(deviceId);
    return d ? (d.active?.size ?? 0) : (this.pendingRestore.get(deviceId)?.length ?? 0);
  }

  /**
   * A device deleted by an admin: all it held here is given back. Its owner (`clearAlerts`) clears
   * its active alerts (`cleared_because: "device_deleted"`), so clients, storage, notification sinks
   * and Alertmanager see them end; another instance drops its restored copies silently.
   */
  forget(state: DeviceState, now: number, clearAlerts: boolean): void {
    const d = this.devices.get(state.id);
    const active = d?.active ?? new Map((this.pendingRestore.get(state.id) ?? []).map((a) => [a.type, a]));
    for (const alert of [...active.values()]) {
      if (clearAlerts) this.book.clear(state, active, alert, now, { reason: 'device_deleted' });
      else this.book.drop(alert);
    }
    this.pendingRestore.delete(state.id);
    this.restoredHealth.delete(state.id);
    if (d === undefined) return;
    this.devices.delete(state.id);
    this.rows.give(d.row);
  }

  allActiveAlerts(): Alert[] {
    return this.book.allActive();
  }

  metricsSummary(deviceId: string, now: number) {
    const d = this.devices.get(deviceId);
    if (d === undefined) return null;
    return { recent: this.metrics.recentSummary(d.row), last24h: this.metrics.summary24h(d.row, now), uptime24h: this.metrics.uptime24h(d.row, now, this.number(d, N.firstSeen)) };
  }

  healthOfAll(): { deviceId: string; score: number }[] {
    const out: { deviceId: string; score: number }[] = [];
    for (const [deviceId, d] of this.devices) if (!Number.isNaN(this.number(d, N.healthAt))) out.push({ deviceId, score: this.number(d, N.health) });
    for (const restored of this.restoredHealth.scores()) if (!this.devices.has(restored.deviceId)) out.push(restored);
    return out;
  }

  private readonly pendingRestore = new Map<string, Alert[]>();
  private readonly restoredHealth: RestoredScores;

  private device(state: DeviceState, now: number): DeviceInsight {
    let d = this.devices.get(state.id);
    if (d === undefined) {
      d = { row: this.rows.take(), active: null, pastSince: null, lastHeard: null, zstats: null, judgedBy: null, judgedType: null };
      this.metrics.reset(d.row);
      const n = this.numbers.chunk(d.row), o = this.numbers.offset(d.row);
      n.fill(NaN, o, o + NUMBERS);
      n[o + N.firstSeen] = n[o + N.accountedAt] = now;
      n[o + N.scoredAt] = 0;
      if (state.status === 'offline') n[o + N.offlineSince] = now;
      // The restored score, if any, becomes the newest and the one last pushed (N.healthAt, then N.health…).
      if (this.restoredHealth.takeInto(state.id, n, o + N.healthAt)) n[o + N.pushed] = n[o + N.health]!;
      const alerts = this.pendingRestore.get(state.id);
      if (alerts !== undefined) {
        d.active = new Map();
        for (const alert of alerts) d.active.set(alert.type, alert);
      }
      this.pendingRestore.delete(state.id);
      this.devices.set(state.id, d);
    }
    return d;
  }

  private number(d: DeviceInsight, field: number): number {
    return this.numbers.chunk(d.row)[this.numbers.offset(d.row) + field]!;
  }

  private setNumber(d: DeviceInsight, field: number, value: number): void {
    this.numbers.chunk(d.row)[this.numbers.offset(d.row) + field] = value;
  }

  /** The device's newest score as an object (built on read: a fleet's scores are kept packed). */
  private scored(d: DeviceInsight): ScoredHealth | null {
    const at = this.number(d, N.healthAt);
    if (Number.isNaN(at)) return null;
    return { ...healthFrom(this.numbers.chunk(d.row), this.numbers.offset(d.row) + N.health, this.opts.weights), at };
  }

  private account(state: DeviceState, d: DeviceInsight, now: number): void {
    const accountedAt = this.number(d, N.accountedAt);
    if (state.status === 'online' && now > accountedAt) this.metrics.addOnlineTime(d.row, accountedAt, now);
    this.setNumber(d, N.accountedAt, now);
  }

  private zscores(state: DeviceState, d: DeviceInsight, metrics: Readonly<Record<string, number>>, now: number): void {
    d.zstats ??= new Map();
    for (const name of this.opts.zscoreMetrics) {
      const value = metrics[name];
      if (value === undefined) continue;
      let stats = d.zstats.get(name);
      if (stats === undefined) d.zstats.set(name, (stats = new EwmaStats()));
      const z = stats.score(value);
      if (z === null) continue;
      const past = Math.abs(z) > this.opts.zscoreThreshold;
      const type = `anomaly:${name}`;
      const verdict = this.verdict(d, type, past, Math.abs(z) < ZSCORE_CLEAR, 0, now);
      if (verdict) this.apply(state, d, type, 'warning', verdict, now, { value, z: Math.round(z * 100) / 100, mean: stats.mean });
    }
  }

  /**
   * Whether a rule's reading raises or clears its alert (hysteresis and minimum duration). Nothing is
   * allocated unless something happens: this runs for every rule on every message.
   */
  private verdict(d: DeviceInsight, type: string, past: boolean, back: boolean, forMs: number, now: number): Verdict | null {
    const active = d.active?.get(type);
    if (active) return back ? { kind: 'clear', alert: active } : null;
    if (!past) {
      d.pastSince?.delete(type);
      return null;
    }
    d.pastSince ??= new Map();
    const since = d.pastSince.get(type) ?? now;
    d.pastSince.set(type, since);
    return now - since >= forMs ? { kind: 'raise', since } : null;
  }

  private apply(state: DeviceState, d: DeviceInsight, type: string, severity: Severity, verdict: Verdict, now: number, data: Record<string, unknown>): void {
    if (verdict.kind === 'clear') this.clear(state, d, verdict.alert, now, data);
    else this.raise(state, d, type, severity, now, { ...data, since: new Date(verdict.since).toISOString() });
  }

  private raise(state: DeviceState, d: DeviceInsight, type: string, severity: Severity, now: number, data: Record<string, unknown>): void {
    d.pastSince?.delete(type);
    this.book.raise(state, (d.active ??= new Map()), type, severity, now, data);
  }

  private clear(state: DeviceState, d: DeviceInsight, alert: Alert, now: number, data: Record<string, unknown>): void {
    if (d.active) this.book.clear(state, d.active, alert, now, data);
  }

  private rescore(state: DeviceState, d: DeviceInsight, now: number, throttled = true): void {
    const n = this.numbers.chunk(d.row), o = this.numbers.offset(d.row), row = d.row;
    if (throttled) n[o + N.scoredAt] = now;
    const score = scoreInto(
      {
        online: state.status === 'online',
        uptime24h: this.metrics.uptime24h(row, now, n[o + N.firstSeen]!),
        flapping: state.flapping,
        battery: this.metrics.lastBattery(row),
        rssi: this.metrics.lastRssi(row),
        errorRate: this.metrics.lastErrorRate(row),
        responseTimeMs: this.metrics.recentResponseMean(row),
        silenceMs: state.lastSeen === null ? null : Math.max(0, now - state.lastSeen),
        timeoutMs: this.opts.timeoutMsOf(state),
      },
      this.opts.weights,
      n,
      o + N.health,
    );
    n[o + N.healthAt] = now;
    const pushed = n[o + N.pushed]!;
    if (!Number.isNaN(pushed) && Math.abs(score - pushed) < this.opts.step) return;
    n[o + N.pushed] = score;
    this.sink.healthScore(state, this.scored(d)!, Number.isNaN(pushed) ? null : pushed);
  }
}
