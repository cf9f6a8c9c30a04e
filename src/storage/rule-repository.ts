import { and, desc, lte, sql } from 'drizzle-orm';
import type { RuleSetDocument } from '../domain/rule-set.js';
import type { VigilDb } from './database.js';
import { ruleSets } from './schema/index.js';

export type RuleSetSource = 'api' | 'reset' | 'env';

/**
 * Versions kept in `rule_sets`, the newest: a set may be 4 MiB, and a client replacing it in a loop
 * would otherwise grow the table without end (100 of the largest: 400 MiB at most).
 */
export const KEPT_RULE_VERSIONS = 100;

export interface StoredRuleSet {
  readonly version: number;
  /** As stored: validated again by whoever reads it (a row edited by hand must not reach the hot path unchecked). */
  readonly document: unknown;
  readonly source: RuleSetSource;
  readonly createdBy: string | null;
  readonly createdAt: Date;
}

/** The rule set in force (the newest version), or null while none is stored. */
export async function loadLatestRuleSet(db: VigilDb): Promise<StoredRuleSet | null> {
  const [row] = await db.select().from(ruleSets).orderBy(desc(ruleSets.version)).limit(1);
  return row === undefined ? null : { ...row, source: row.source as RuleSetSource };
}

/** The newest version number (0: none stored): what the safety-net poll reads every few seconds. */
export async function latestRuleVersion(db: VigilDb): Promise<number> {
  const [row] = await db.select({ version: sql<number | null>`max(${ruleSets.version})` }).from(ruleSets);
  return Number(row?.version ?? 0);
}

/**
 * Stores `document` as version `expected + 1`, or 'stale' when that version exists already (someone
 * stored another since `expected` was read): the primary key decides, so of two concurrent writers
 * exactly one wins. `expected` null: after whatever is newest (a few tries against concurrent writers).
 */
export async function storeRuleSet(
  db: VigilDb,
  expected: number | null,
  document: RuleSetDocument,
  source: RuleSetSource,
  createdBy: string | null,
): Promise<{ readonly version: number } | 'stale'> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const base = expected ?? (await latestRuleVersion(db));
    if (expected !== null && (await latestRuleVersion(db)) !== expected) return 'stale';
    const inserted = await db
      .insert(ruleSets)
      .values({ version: base + 1, document, source, createdBy })
      .onConflictDoNothing()
      .returning({ version: ruleSets.version });
    if (inserted.length === 1) {
      const version = inserted[0]!.version;
      // The newest ALERT_RULES version is kept whatever its age: it is what a restart compares with.
      await db
        .delete(ruleSets)
        .where(and(lte(ruleSets.version, version - KEPT_RULE_VERSIONS), sql`${ruleSets.version} <> coalesce((select max(version) from rule_sets where source = 'env'), 0)`));
      return { version };
    }
    if (expected !== null) return 'stale';
  }
  return 'stale';
}

/**
 * ALERT_RULES at start: stored as a new version when it differs from the last version stored from
 * it (or none was), so editing the setting and restarting applies it, while changes made over the
 * API since survive restarts with the setting unchanged. Every instance may try at once: the
 * primary key lets one of them store it, the others find it equal.
 */
export async function seedRuleSet(db: VigilDb, document: RuleSetDocument): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const [last] = await db
      .select({ same: sql<boolean>`${ruleSets.document} = ${JSON.stringify(document)}::jsonb` })
      .from(ruleSets)
      .where(sql`${ruleSets.source} = 'env'`)
      .orderBy(desc(ruleSets.version))
      .limit(1);
    if (last?.same === true) return;
    const stored = await storeRuleSet(db, await latestRuleVersion(db), document, 'env', null);
    if (stored !== 'stale') return;
  }
}
