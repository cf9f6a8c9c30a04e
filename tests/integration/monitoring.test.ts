import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { RunningHub } from '../../src/app.js';
import { VERSION } from '../../src/version.js';
import { deviceClient, httpUrl, startTestHub } from '../helpers/hub.js';
import { exportedNames, metricNames } from '../helpers/promql-names.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { randomSuffix } from '../helpers/services.js';

/**
 * /metrics under standard names with build info and true device counts (devices publishing over
 * the real Mosquitto), and the shipped Grafana dashboard and Prometheus rules naming only metrics
 * the hub exports (a renamed metric breaks them silently otherwise).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
/** Series Prometheus makes itself for every target. */
const SYNTHETIC = new Set(['up']);
const DEVICES = 25;

/** Every PromQL expression of a Grafana dashboard (panel targets, also in rows) and its query variables. */
function dashboardExprs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) dashboardExprs(item, out);
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'expr' && typeof value === 'string') out.push(value);
      else if (key === 'definition' && typeof value === 'string') {
        const variable = /^label_values\(\s*([^,]+),/.exec(value);
        out.push(variable ? variable[1]! : value);
      } else dashboardExprs(value, out);
    }
  }
  return out;
}

interface Rule {
  readonly alert?: unknown;
  readonly record?: unknown;
  readonly expr?: unknown;
  readonly for?: unknown;
  readonly labels?: unknown;
  readonly annotations?: unknown;
}

const RULE_FILES = readdirSync(join(ROOT, 'deploy/prometheus/rules')).filter((f) => f.endsWith('.yml'));
const rulesOf = (file: string) => (parse(read(`deploy/prometheus/rules/${file}`)) as { groups: { name: string; rules: Rule[] }[] }).groups;

/**
 * What keeps a dashboard from importing into another Grafana: a data source named by uid (or by
 * name, the older string form) instead of the dashboard's one `datasource`-type variable. Every
 * `datasource` anywhere (panels, panels in rows, targets, query variables, annotations) must be
 * `{type: "prometheus", uid: "${<variable>}"}`, and every panel or target with queries must name one.
 */
function datasourceProblems(dashboard: { templating?: { list?: { name: string; type: string; query?: unknown }[] } }): string[] {
  const problems: string[] = [];
  const variables = (dashboard.templating?.list ?? []).filter((v) => v.type === 'datasource');
  if (variables.length !== 1 || variables[0]!.query !== 'prometheus') return ['want exactly one datasource variable of type prometheus'];
  const name = variables[0]!.name;
  const refs = new Set([`\${${name}}`, `$${name}`]);
  const visit = (node: unknown, where: string): void => {
    if (Array.isArray(node)) node.forEach((item, i) => visit(item, `${where}[${i}]`));
    else if (node !== null && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      // A panel with queries, or a query variable, names its data source (else Grafana's default, whatever that is).
      if (('targets' in record || record.type === 'query') && !('datasource' in record)) problems.push(`${where}: no datasource`);
      for (const [key, value] of Object.entries(record)) {
        if (key === 'datasource') {
          const ds = value as { type?: unknown; uid?: unknown } | null;
          if (typeof ds !== 'object' || ds === null || ds.type !== 'prometheus' || !refs.has(String(ds.uid))) problems.push(`${where}.datasource: ${JSON.stringify(value)}`);
        } else if (key === 'targets' && Array.isArray(value)) {
          value.forEach((t: Record<string, unknown>, i) => {
            if (!('datasource' in t)) problems.push(`${where}.targets[${i}]: no datasource`);
          });
          visit(value, `${where}.targets`);
        } else visit(value, `${where}.${key}`);
      }
    }
  };
  visit(dashboard, '$');
  return problems;
}

/** The branches of a PromQL expression's top-level `or`s (not inside brackets or strings), whitespace squeezed. */
function orBranches(expr: string): string[] {
  const branches: string[] = [];
  let depth = 0;
  let start = 0;
  let quoted = false;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c === '"' && expr[i - 1] !== '\\') quoted = !quoted;
    if (quoted) continue;
    if ('({['.includes(c)) depth++;
    else if (')}]'.includes(c)) depth--;
    else if (depth === 0 && /\sor\s/.test(expr.slice(i - 1, i + 3)) && c === 'o') {
      branches.push(expr.slice(start, i));
      start = i + 2;
    }
  }
  branches.push(expr.slice(start));
  return branches.map((b) => b.replace(/\s+/g, ' ').trim());
}

describe('the PromQL name extraction this test relies on', () => {
  it('finds metrics through functions, aggregations, matchers, ranges, histogram series and variables', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(vigil_writer_flush_seconds_bucket{instance=~"$instance"}[$__rate_interval])))')).toEqual(['vigil_writer_flush_seconds_bucket']);
    expect(metricNames('sum by (instance) (a_total) > 0 and on (instance) rate(b{x="y(z)"}[5m] offset 1h) == 0 unless c').sort()).toEqual(['a_total', 'b', 'c']);
    expect(metricNames('process_resident_memory_bytes / 2^30 > 1e3')).toEqual(['process_resident_memory_bytes']);
  });
  it('finds a hard-coded data source in a dashboard, and top-level or branches in a rule', () => {
    const variable = { name: 'datasource', type: 'datasource', query: 'prometheus' };
    const panel = (uid: string) => ({ type: 'timeseries', datasource: { type: 'prometheus', uid }, targets: [{ datasource: { type: 'prometheus', uid }, expr: 'up' }] });
    expect(datasourceProblems({ templating: { list: [variable] }, panels: [panel('${datasource}')] } as never)).toEqual([]);
    expect(datasourceProblems({ templating: { list: [variable] }, panels: [panel('${datasource}'), panel('vigil-prometheus')] } as never)).toHaveLength(2);
    expect(datasourceProblems({ templating: { list: [variable] }, panels: [{ type: 'row', panels: [{ type: 'stat', datasource: 'Prometheus', targets: [{ expr: 'up' }] }] }] } as never)).toHaveLength(2);
    expect(datasourceProblems({ templating: { list: [] }, panels: [] } as never)).not.toEqual([]);
    expect(orBranches('up{job="vigil"} == 0 or absent(up{job="vigil"})')).toEqual(['up{job="vigil"} == 0', 'absent(up{job="vigil"})']);
    expect(orBranches('sum by (x) (a or b) > 0')).toEqual(['sum by (x) (a or b) > 0']);
    expect(orBranches('a{l="x or y"} > 1')).toEqual(['a{l="x or y"} > 1']);
  });
  it('reads families and their series from the exposition', () => {
    const names = exportedNames('# TYPE h histogram\nh_bucket{le="1"} 0\n# TYPE c_total counter\n# TYPE s summary\n');
    expect([...names].sort()).toEqual(['c_total', 'h', 'h_bucket', 'h_count', 'h_sum', 's', 's_count', 's_sum']);
  });
});

describe('/metrics, the Grafana dashboard and the Prometheus rules', () => {
  let hub: RunningHub;
  const databases = freshDatabases();
  let exposition = '';
  const scrape = async () => (await fetch(httpUrl(hub, '/metrics'))).text();
  const sample = (text: string, name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? null : Number(line.slice(name.length + 1));
  };

  beforeAll(async () => {
    // One webhook and one Alertmanager sink (nothing listens: nothing is sent without an alert), so the
    // per-sink notification gauges have their series too.
    // A database of its own: the device counts must be this test's devices, not those other tests left.
    hub = await startTestHub('services', { DATABASE_URL: await databases.create(), ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/hook', ALERTMANAGER_URL: 'http://127.0.0.1:9', NOTIFY_POLL_MS: '100' });
    const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
    const run = randomSuffix();
    for (let i = 0; i < DEVICES; i++) await device.telemetry(`mon-${run}-${i}`, { battery_level: 80 });
    const until = Date.now() + 30_000;
    for (;;) {
      exposition = await scrape();
      if (sample(exposition, 'vigil_devices_known') === DEVICES && sample(exposition, 'vigil_devices_online') === DEVICES) break;
      if (Date.now() > until) throw new Error(`devices not counted: known ${sample(exposition, 'vigil_devices_known')}, online ${sample(exposition, 'vigil_devices_online')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await device.client.endAsync();
  }, 120_000);
  afterAll(async () => {
    await hub?.stop();
    await databases.dropAll();
  });

  it('has default metrics under their standard names, build info and true device counts', () => {
    expect(sample(exposition, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sample(exposition, 'nodejs_eventloop_lag_p99_seconds')).not.toBeNull();
    expect(exposition).not.toMatch(/^vigil_process_/m);
    const build = /^vigil_build_info\{([^}]*)\} (\S+)$/m.exec(exposition);
    expect(build, 'vigil_build_info').not.toBeNull();
    expect(build![2]).toBe('1');
    expect(build![1]).toContain(`version="${VERSION}"`);
    expect(build![1]).toContain(`node="${process.version}"`);
    expect(build![1]).toMatch(/uws_build="uWebSockets\.js@\d+\.\d+\.\d+"|uws_build="uws-v[^"]+"/);
    expect(sample(exposition, 'vigil_devices_known')).toBe(DEVICES);
    expect(sample(exposition, 'vigil_devices_offline')).toBe(0);
    expect(sample(exposition, 'vigil_cluster_members')).toBe(1);
    expect(exposition).toMatch(/^vigil_alerts_active\{severity="critical"\} 0$/m);
  });

  it('sets every gauge it declares: each has a sample, and those that describe state hold it', () => {
    const gauges = [...exposition.matchAll(/^# TYPE (vigil_\S+) gauge$/gm)].map((m) => m[1]!);
    expect(gauges.length).toBeGreaterThan(10);
    const unset = gauges.filter((g) => !new RegExp(`^${g}(\\{| )`, 'm').test(exposition));
    expect(unset, 'gauges with no sample').toEqual([]);
    // An unlabelled gauge prints 0 even if nothing ever sets it: these must show the hub's state.
    const state: Record<string, number> = {
      vigil_devices_known: DEVICES,
      vigil_devices_online: DEVICES,
      vigil_devices_max: hub.config.MAX_DEVICES,
      vigil_mqtt_connected: 1,
      vigil_cluster_members: 1,
      vigil_ws_connections: 0,
      vigil_ingest_paused: 0,
    };
    for (const [name, value] of Object.entries(state)) expect(sample(exposition, name), name).toBe(value);
    expect(sample(exposition, 'vigil_presence_backlog_read_seconds')).toBeGreaterThan(0);
  });

  it('the dashboard and the rules name only metrics the hub exports', () => {
    const exported = exportedNames(exposition);
    const dashboard = dashboardExprs(JSON.parse(read('deploy/grafana/dashboards/vigil.json')));
    const rules = RULE_FILES.flatMap((f) => rulesOf(f).flatMap((g) => g.rules.map((r) => String(r.expr))));
    expect(dashboard.length).toBeGreaterThan(20);
    expect(rules.length).toBeGreaterThanOrEqual(6);
    const unknown: string[] = [];
    for (const [source, exprs] of [['dashboard', dashboard], ['rules', rules]] as const) {
      for (const expr of exprs) {
        const names = metricNames(expr);
        expect(names.length, `${source}: ${expr}`).toBeGreaterThan(0);
        for (const name of names) if (!exported.has(name) && !SYNTHETIC.has(name)) unknown.push(`${source}: ${name} in ${expr}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('the rules files are valid Prometheus rule files (promtool when installed, else their structure)', () => {
    for (const file of RULE_FILES) {
      const path = join(ROOT, 'deploy/prometheus/rules', file);
      if (existsSync('/usr/bin/promtool') || existsSync('/usr/local/bin/promtool')) execFileSync('promtool', ['check', 'rules', path]);
      const groups = rulesOf(file);
      expect(Array.isArray(groups), file).toBe(true);
      expect(new Set(groups.map((g) => g.name)).size).toBe(groups.length);
      for (const group of groups) {
        expect(typeof group.name).toBe('string');
        const names = new Set<string>();
        for (const rule of group.rules) {
          const label = `${file} ${String(rule.alert ?? rule.record)}`;
          expect(Object.keys(rule).every((k) => ['alert', 'record', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'].includes(k)), label).toBe(true);
          expect(typeof rule.alert === 'string' !== (typeof rule.record === 'string'), `${label}: alert or record`).toBe(true);
          expect(String(rule.alert ?? rule.record)).toMatch(/^[A-Za-z_:][A-Za-z0-9_:]*$/);
          expect(names.has(String(rule.alert)), `${label} twice`).toBe(false);
          names.add(String(rule.alert));
          expect(typeof rule.expr === 'string' && rule.expr.trim() !== '', label).toBe(true);
          // Balanced brackets: a typo there is the commonest broken expression.
          const expr = String(rule.expr).replace(/"(?:[^"\\]|\\.)*"/g, '');
          for (const [open, close] of [['(', ')'], ['{', '}'], ['[', ']']] as const) expect(expr.split(open).length, `${label} ${open}${close}`).toBe(expr.split(close).length);
          if (rule.for !== undefined) expect(String(rule.for), label).toMatch(/^(\d+(ms|s|m|h|d|w|y))+$/);
          for (const map of [rule.labels, rule.annotations]) {
            if (map === undefined) continue;
            expect(typeof map, label).toBe('object');
            for (const value of Object.values(map as object)) expect(typeof value, label).toBe('string');
          }
          expect((rule.labels as { severity?: string } | undefined)?.severity, `${label} severity`).toMatch(/^(critical|warning|info)$/);
        }
      }
    }
  });

  it('the hub-down alert fires with no hub left to scrape (DNS discovery: no target, no up series)', () => {
    const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string; dns_sd_configs?: unknown[] }[] };
    const job = prometheus.scrape_configs.find((s) => s.job_name === 'vigil')!;
    expect(job.dns_sd_configs, 'the hubs are found by service discovery').toBeDefined();
    const rules = RULE_FILES.flatMap((f) => rulesOf(f).flatMap((g) => g.rules));
    const down = rules.find((r) => r.alert === 'VigilHubDown')!;
    expect(down, 'VigilHubDown').toBeDefined();
    const branches = orBranches(String(down.expr));
    // A failing target: its up series is 0. No target at all: there is no up series, only absent() sees that.
    expect(branches).toContain(`up{job="${job.job_name}"} == 0`);
    expect(branches.some((b) => b === `absent(up{job="${job.job_name}"})` || new RegExp(`^absent_over_time\\(up\\{job="${job.job_name}"\\}\\[\\w+\\]\\)$`).test(b)), String(down.expr)).toBe(true);
    expect(down.for).toBe('1m');
    expect((down.labels as { severity: string }).severity).toBe('critical');
    // absent() yields a series without `instance`: the summary must not read "Vigil hub  does not answer".
    expect(String((down.annotations as { summary: string }).summary)).toMatch(/\{\{ if \$labels\.instance \}\}.*\{\{ else \}\}.+\{\{ end \}\}/);
  });

  it('the dashboard imports into any Grafana: every panel and query takes the datasource variable', () => {
    type Panel = { targets?: unknown[]; panels?: Panel[] };
    const dashboard = JSON.parse(read('deploy/grafana/dashboards/vigil.json')) as Parameters<typeof datasourceProblems>[0] & { panels: Panel[] };
    expect(datasourceProblems(dashboard)).toEqual([]);
    // Not a vacuous pass: the panels with queries are there (rows' panels included).
    const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    expect(panels.filter((p) => (p.targets ?? []).length > 0).length).toBeGreaterThan(15);
  });

  it('the compose profile mounts files that exist where Prometheus and Grafana read them', () => {
    const compose = parse(read('docker-compose.yml')) as { services: Record<string, { profiles?: string[]; volumes?: string[]; image?: string }> };
    for (const name of ['prometheus', 'grafana']) {
      const service = compose.services[name]!;
      expect(service.profiles).toEqual(['monitoring']);
      expect(service.image).toMatch(name === 'prometheus' ? /^prom\/prometheus:v\d/ : /^grafana\/grafana:\d/);
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(':');
        if (source!.startsWith('./')) expect(existsSync(join(ROOT, source!)), volume).toBe(true);
      }
    }
    const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as { rule_files: string[]; scrape_configs: { job_name: string; metrics_path: string }[] };
    expect(prometheus.rule_files).toEqual(['/etc/prometheus/rules/*.yml']);
    expect(compose.services.prometheus!.volumes).toContain('./deploy/prometheus/rules:/etc/prometheus/rules:ro');
    expect(prometheus.scrape_configs.find((s) => s.job_name === 'vigil')?.metrics_path).toBe('/metrics');
    const provider = parse(read('deploy/grafana/provisioning/dashboards/vigil.yml')) as { providers: { options: { path: string } }[] };
    expect(compose.services.grafana!.volumes).toContain(`./deploy/grafana/dashboards:${provider.providers[0]!.options.path}:ro`);
    const datasource = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; url: string; type: string; isDefault?: boolean }[] };
    expect(datasource.datasources[0]!.url).toBe('http://prometheus:9090');
    // The dashboard's datasource variable picks the default data source of its type when nothing is
    // pinned: compose provisions exactly one Prometheus, the default.
    expect(datasource.datasources.filter((d) => d.type === 'prometheus')).toHaveLength(1);
    expect(datasource.datasources[0]).toMatchObject({ type: 'prometheus', isDefault: true });
    const dashboard = JSON.parse(read('deploy/grafana/dashboards/vigil.json')) as { templating: { list: { type: string; current?: { value?: unknown } }[] } };
    const current = dashboard.templating.list.find((v) => v.type === 'datasource')?.current?.value;
    expect([undefined, 'default', datasource.datasources[0]!.uid]).toContain(current);
  });
});
