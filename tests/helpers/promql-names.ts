/**
 * The metric names a PromQL expression selects, without a full parser: strings, label matchers,
 * ranges, grouping clauses and Grafana variables are taken out, then every identifier that is not
 * a function or aggregation (followed by `(`), a keyword or part of a number is a metric name.
 */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'atan2']);

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z]+)?\}?/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = match[0];
    const at = match.index;
    const before = stripped[at - 1] ?? ' ';
    if (/[0-9.]/.test(before)) continue; // 1e3, 5m
    if (KEYWORDS.has(name.toLowerCase())) continue;
    if (/^\s*\(/.test(stripped.slice(at + name.length))) continue; // rate(, sum(, histogram_quantile(
    names.add(name);
  }
  return [...names];
}

/** Every sample name a Prometheus text exposition can hold: families and their histogram/summary series. */
export function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      names.add(name);
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
      if (kind === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
    } else if (line !== '' && !line.startsWith('#')) {
      names.add(/^[A-Za-z_:][A-Za-z0-9_:]*/.exec(line)![0]);
    }
  }
  return names;
}
