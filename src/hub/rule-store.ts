import { CompiledRuleSet, DEFAULT_RULE_SET } from '../domain/compiled-rules.js';
import { EMPTY_RULE_SET, ruleSetSchema, type RuleSetDocument } from '../domain/rule-set.js';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { VigilDb } from '../storage/database.js';
import { latestRuleVersion, loadLatestRuleSet, seedRuleSet, storeRuleSet, type RuleSetSource } from '../storage/rule-repository.js';
import type { Insights } from './insights.js';
import type { HubOwnerApi } from '../cluster/owner-api/index.js';

export interface RuleStoreOptions {
  readonly db: VigilDb;
  readonly insights: Insights;
  /** Tells every instance of a new version (and answers when told, reloading it). */
  readonly owner: HubOwnerApi;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly faults: Faults;
  /** The safety-net poll of the stored version (RULES_POLL_S). */
  readonly pollMs: number;
}

/** The rule set in force, as the API shows it. */
export interface RuleSetView {
  readonly version: number;
  readonly document: RuleSetDocument;
  readonly source: RuleSetSource | 'built-in';
  readonly updatedBy: string | null;
  readonly updatedAt: Date | null;
}

/** How many instances applied a new version before the answer (the others catch up by the poll). */
export interface Propagation {
  readonly instances: number;
  readonly missing: number;
}

/**
 * The alert rule set as data: stored in the database by version, compiled once per version and
 * handed to the insights, which judge the next message with it. A change made here is applied here
 * at once and then on every instance through the cluster bus (each one reloads from the database
 * and answers with its version); a poll of the stored version every RULES_POLL_S catches an
 * instance that missed the notice (it was restarting, Redis was away).
 */
export class RuleStore {
  private current: RuleSetView = { version: 0, document: EMPTY_RULE_SET, source: 'built-in', updatedBy: null, updatedAt: null };
  /** Reloads run one after another, so an older version can never be applied after a newer one. */
  private chain: Promise<unknown> = Promise.resolve();
  private poll: NodeJS.Timeout | null = null;
  /** A stored version that failed validation: reported once, not at every poll. */
  private refusedVersion = 0;

  constructor(private readonly opts: RuleStoreOptions) {
    opts.owner.serve({ reloadRules: (_all, version) => this.reloadTo(version, 'notice') });
  }

  /** Stores ALERT_RULES as a new version when it changed (seedRuleSet), loads the newest version and starts the poll. */
  async start(initial: RuleSetDocument | null): Promise<void> {
    if (initial !== null) await seedRuleSet(this.opts.db, initial);
    await this.reload('start');
    this.opts.metrics.ruleSetVersion.set(this.current.version);
    this.poll = setInterval(this.opts.faults.guard('rule_reload', () => this.pollOnce()), this.opts.pollMs);
    this.poll.unref();
  }

  stop(): void {
    if (this.poll !== null) clearInterval(this.poll);
  }

  get view(): RuleSetView {
    return this.current;
  }

  /**
   * Replaces the whole set if the stored version is still `expected` (null: whatever it is), then
   * applies it on every instance. 'stale': another version was stored since.
   */
  async replace(document: RuleSetDocument, expected: number | null, by: string | null, source: RuleSetSource = 'api'): Promise<{ view: RuleSetView; propagation: Propagation } | 'stale'> {
    const stored = await storeRuleSet(this.opts.db, expected, document, source, by);
    if (stored === 'stale') return 'stale';
    await this.serial(async () => this.apply({ version: stored.version, document, source, updatedBy: by, updatedAt: new Date() }, 'local'));
    const { answers, missing } = await this.opts.owner.reloadRules(stored.version);
    return { view: this.current, propagation: { instances: answers.length, missing: missing + answers.filter((v) => v < stored.version).length } };
  }

  /** Back to the built-in rules only, as a new version (so caches and If-Match see the change). */
  reset(expected: number | null, by: string | null): ReturnType<RuleStore['replace']> {
    return this.replace(EMPTY_RULE_SET, expected, by, 'reset');
  }

  private async pollOnce(): Promise<void> {
    if ((await latestRuleVersion(this.opts.db)) > this.current.version) await this.reload('poll');
  }

  /** Reloads unless `version` is in force already; answers the version in force after. */
  private async reloadTo(version: number, outcome: 'notice'): Promise<number> {
    if (version > this.current.version) await this.reload(outcome);
    return this.current.version;
  }

  private reload(outcome: 'start' | 'notice' | 'poll'): Promise<void> {
    return this.serial(async () => {
      const stored = await loadLatestRuleSet(this.opts.db);
      if (stored === null || stored.version <= this.current.version) return;
      const parsed = ruleSetSchema.safeParse(stored.document);
      if (!parsed.success) {
        if (this.refusedVersion !== stored.version) {
          this.refusedVersion = stored.version;
          this.opts.metrics.ruleSetChanges.inc({ outcome: 'invalid' });
          this.opts.log.error({ version: stored.version, problems: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) }, 'stored rule set is invalid; keeping the one in force');
        }
        return;
      }
      this.apply({ version: stored.version, document: parsed.data, source: stored.source, updatedBy: stored.createdBy, updatedAt: stored.createdAt }, outcome);
    });
  }

  /** Compiles the version once and hands it to the insights: the next message is judged by it. */
  private apply(view: RuleSetView, outcome: 'local' | 'start' | 'notice' | 'poll'): void {
    if (view.version <= this.current.version) return;
    this.opts.insights.setRules(view.version === 0 ? DEFAULT_RULE_SET : new CompiledRuleSet(view.version, view.document));
    this.current = view;
    this.opts.metrics.ruleSetVersion.set(view.version);
    this.opts.metrics.ruleSetChanges.inc({ outcome });
    this.opts.log.info({ version: view.version, source: view.source, how: outcome }, 'alert rule set applied');
  }

  private serial<T>(step: () => Promise<T>): Promise<T> {
    const next = this.chain.then(step, step);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
