import { ruleSetSchema, type RuleSetDocument } from '../domain/rule-set.js';
import { DEFAULT_WEIGHTS, type Weights } from '../domain/health-score.js';
import { ConfigError } from './config-error.js';
import type { Config } from './schema.js';

/** Config to options: each part's settings read from the configuration, beside it (the composition root calls these). */

/** HEALTH_WEIGHTS over the defaults. */
export function healthWeights(config: Config): Weights {
  const weights: Record<string, number> = { ...DEFAULT_WEIGHTS };
  for (const pair of config.HEALTH_WEIGHTS?.split(',') ?? []) {
    const [name, weight] = pair.split('=');
    weights[name!] = Number(weight);
  }
  return weights as Weights;
}

/**
 * ALERT_RULES: the initial rule set (used while the database holds none): a JSON array of rules
 * (for every device) or a whole rule set `{"rules":…,"device_types":…,"devices":…}`
 * (docs/health-and-alerts.md); errors name the rule and field. Null when unset.
 */
export function initialRuleSet(config: Config): RuleSetDocument | null {
  if (!config.ALERT_RULES) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(config.ALERT_RULES);
  } catch {
    throw new ConfigError('invalid configuration:\n  ALERT_RULES: not valid JSON (expected an array of rules or a rule set)');
  }
  const parsed = ruleSetSchema.safeParse(Array.isArray(raw) ? { rules: raw } : raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ALERT_RULES${Array.isArray(raw) ? `[${i.path.slice(1).join('.')}]` : `.${i.path.join('.')}`}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** `sensor=1500,tracker=30` → Map of device type → timeout in ms. */
export function typeTimeouts(config: Config): Map<string, number> {
  const map = new Map<string, number>();
  for (const pair of config.DEVICE_TYPE_TIMEOUTS?.split(',') ?? []) {
    const [type, seconds] = pair.split('=');
    map.set(type!, Number(seconds) * 1000);
  }
  return map;
}
