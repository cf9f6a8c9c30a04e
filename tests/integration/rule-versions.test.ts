import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { EMPTY_RULE_SET } from '../../src/domain/rule-set.js';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { KEPT_RULE_VERSIONS, latestRuleVersion, loadLatestRuleSet, storeRuleSet } from '../../src/storage/rule-repository.js';
import { ruleSets } from '../../src/storage/schema/index.js';

/* Rule set versions are kept KEPT_RULE_VERSIONS deep (a PUT /rules loop cannot grow the table for ever); the newest stays in force. On PGlite. */
const opened: Database[] = [];
afterAll(async () => {
  for (const d of opened) await d.close();
});

it(`keeps the newest ${KEPT_RULE_VERSIONS} versions`, async () => {
  const database = await openDatabase({ dataDir: mkdtempSync(join(tmpdir(), 'vigil-rules-')) });
  opened.push(database);
  const total = KEPT_RULE_VERSIONS + 25;
  for (let i = 0; i < total; i++) {
    const stored = await storeRuleSet(database.db, i, { ...EMPTY_RULE_SET, rules: [] }, 'api', null);
    expect(stored).toEqual({ version: i + 1 });
  }
  const rows = await database.db.select({ version: ruleSets.version }).from(ruleSets);
  expect(rows).toHaveLength(KEPT_RULE_VERSIONS);
  expect(Math.min(...rows.map((r) => r.version))).toBe(total - KEPT_RULE_VERSIONS + 1);
  expect(await latestRuleVersion(database.db)).toBe(total);
  expect((await loadLatestRuleSet(database.db))?.version).toBe(total);
  // A writer that read a pruned version is still told it is stale.
  expect(await storeRuleSet(database.db, 3, EMPTY_RULE_SET, 'api', null)).toBe('stale');
}, 120_000);
