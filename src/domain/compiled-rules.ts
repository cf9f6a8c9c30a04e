import { BUILT_IN_RULE_INPUTS, compileRule, EMPTY_RULE_SET, ruleSchema, type CompiledRule, type RuleList, type RuleSetDocument } from './rule-set.js';

type Entry = ReturnType<typeof compileRule>;

/** Applies `overrides` to `base` type by type: a rule replaces the one of its type, an off entry removes it. */
function merge(base: readonly CompiledRule[], overrides: readonly Entry[]): CompiledRule[] {
  const out = [...base];
  for (const { type, rule } of overrides) {
    const at = out.findIndex((r) => r.type === type);
    if (rule === null) {
      if (at !== -1) out.splice(at, 1);
    } else if (at !== -1) out[at] = rule;
    else out.push(rule);
  }
  return out;
}

function toList(rules: readonly CompiledRule[]): RuleList {
  return {
    thresholds: rules.filter((r) => r.kind === 'threshold'),
    stale: rules.filter((r) => r.kind === 'stale'),
    byType: new Map(rules.map((r) => [r.type, r])),
  };
}

const BUILT_INS: readonly CompiledRule[] = BUILT_IN_RULE_INPUTS.map((r) => compileRule(ruleSchema.parse(r)).rule!);

/**
 * One version of the rule set, compiled once: the lists for devices without overrides and for
 * each device type are built here; a device with overrides gets its list built on first use and
 * kept (per device type, since a device's type can change). Looking a device's rules up on the hot
 * path is two map reads and allocates nothing.
 */
export class CompiledRuleSet {
  private readonly base: RuleList;
  private readonly baseRules: readonly CompiledRule[];
  private readonly byType = new Map<string, { rules: readonly CompiledRule[]; list: RuleList }>();
  private readonly deviceOverrides = new Map<string, readonly Entry[]>();
  private readonly deviceLists = new Map<string, { type: string | null; list: RuleList }>();

  constructor(
    readonly version: number,
    readonly document: RuleSetDocument,
  ) {
    this.baseRules = merge(BUILT_INS, document.rules.map(compileRule));
    this.base = toList(this.baseRules);
    for (const [type, list] of Object.entries(document.device_types)) {
      const rules = merge(this.baseRules, list.map(compileRule));
      this.byType.set(type, { rules, list: toList(rules) });
    }
    for (const [id, list] of Object.entries(document.devices)) this.deviceOverrides.set(id, list.map(compileRule));
  }

  /** The rules in force for a device of this type: built-ins ← `rules` ← `device_types[type]` ← `devices[id]`. */
  rulesFor(deviceId: string, type: string | null): RuleList {
    const overrides = this.deviceOverrides.get(deviceId);
    if (overrides === undefined) return (type === null ? undefined : this.byType.get(type)?.list) ?? this.base;
    const cached = this.deviceLists.get(deviceId);
    if (cached !== undefined && cached.type === type) return cached.list;
    const typeRules = (type === null ? undefined : this.byType.get(type)?.rules) ?? this.baseRules;
    const list = toList(merge(typeRules, overrides));
    this.deviceLists.set(deviceId, { type, list });
    return list;
  }
}

/** Version 0: no rule set stored (built-in rules only). */
export const DEFAULT_RULE_SET = new CompiledRuleSet(0, EMPTY_RULE_SET);
