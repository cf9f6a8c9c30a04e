// The last 24 h of a device's status from GET /status/{id}/history?kind=status: a step chart of
// online and offline, the online share, and the offline spans listed in words.
import { enc, json } from './api.js';
import { statusChart } from './charts.js';
import { h } from './dom.js';
import { duration, localTime } from './format.js';

const DAY = 86_400_000;

export function statusTimeline(deviceId) {
  let changes = []; // [{ t, status }], oldest first
  let chart = null;
  const box = h('div', { class: 'chart-box' });
  const summary = h('p', { class: 'timeline-summary' });
  const spans = h('ul', { class: 'spans', 'aria-label': 'Offline spans' });
  const root = h('section', { class: 'panel', 'aria-label': 'Status, last 24 h' },
    h('h2', { class: 'panel-title' }, 'Status, last 24 h'), summary, box, h('h3', { class: 'sub-title' }, 'Offline spans'), spans);

  async function load() {
    const since = new Date(Date.now() - DAY).toISOString();
    const [inside, before] = await Promise.all([
      json(`/status/${enc(deviceId)}/history?kind=status&limit=1000&since=${enc(since)}`),
      json(`/status/${enc(deviceId)}/history?kind=status&limit=1&before=${enc(since)}`),
    ]);
    const start = before.history[0] ? [{ t: Date.now() - DAY, status: before.history[0].status }] : [];
    changes = [...start, ...inside.history.reverse().map((s) => ({ t: Date.parse(s.timestamp), status: s.status }))];
    draw();
  }

  function draw() {
    const now = Date.now();
    const from = now - DAY;
    const xs = [];
    const status = []; // 1 online, 0 offline, null unknown
    for (const c of changes) {
      xs.push(Math.max(from, c.t) / 1000);
      status.push(c.status === 'online' ? 1 : c.status === 'offline' ? 0 : null);
    }
    if (changes.length > 0) {
      xs.push(now / 1000);
      status.push(status.at(-1));
    }
    chart?.setData([xs, status]);
    const periods = changes.map((c, i) => ({ status: c.status, from: Math.max(from, c.t), to: changes[i + 1]?.t ?? now }));
    const known = periods.reduce((n, p) => n + (p.to - p.from), 0);
    const online = periods.filter((p) => p.status === 'online').reduce((n, p) => n + (p.to - p.from), 0);
    const offline = periods.filter((p) => p.status === 'offline' && p.to > p.from);
    summary.textContent = known > 0
      ? `Online ${((online / known) * 100).toFixed(1)} % of the ${duration(known)} on record · ${offline.length} offline span${offline.length === 1 ? '' : 's'}`
      : 'No status changes recorded in the last 24 h.';
    spans.replaceChildren(...offline.slice(-8).reverse().map((p) =>
      h('li', {}, h('span', { class: 'status status-offline' }, 'offline'), ` ${localTime(p.from)} – ${p.to === now ? 'now' : localTime(p.to)} (${duration(p.to - p.from)})`)));
    if (offline.length === 0) spans.append(h('li', { class: 'muted' }, 'None'));
  }

  return {
    root,
    start() {
      // The last 24 h, or less when the record is younger: a span of seconds would not show in a day.
      chart = statusChart(box, { from: () => Math.max(Date.now() - DAY, (changes[0]?.t ?? 0) - 60_000), to: () => Date.now() });
      load().catch((e) => (summary.textContent = `Could not load the status history: ${e.message}`));
    },
    live(f) {
      changes.push({ t: Date.parse(f.timestamp), status: f.status });
      draw();
    },
    tick: () => changes.length > 0 && draw(),
    destroy: () => chart?.destroy(),
  };
}
