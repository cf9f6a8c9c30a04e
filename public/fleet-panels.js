// The fleet-level picture above the device table: key figures, online/offline over time, the score
// distribution, active alerts by severity, the worst devices and the fleet by device type.
import { barChart, countsChart } from './charts.js';
import { h, icon, setText } from './dom.js';
import { count, score, scoreBand, SEVERITIES, severityIcon } from './format.js';
import * as store from './fleet-store.js';

const BANDS = ['0–20', '20–40', '40–60', '60–80', '80–100'];

function kpi(key, label) {
  return h('div', { class: `kpi kpi-${key}`, 'data-kpi': key }, h('span', { class: 'kpi-label' }, label), h('b', { class: 'kpi-value' }, '—'), h('span', { class: 'kpi-sub' }));
}

export function fleetPanels() {
  const kpis = h('div', { class: 'kpis', role: 'group', 'aria-label': 'Fleet figures' },
    kpi('devices', 'Devices'), kpi('online', 'Online'), kpi('offline', 'Offline'), kpi('flapping', 'Flapping'), kpi('alerts', 'Active alerts'));
  const countsBox = h('div', { class: 'chart-box' });
  const scoresBox = h('div', { class: 'chart-box' });
  const severity = h('ul', { class: 'bars', 'aria-label': 'Active alerts by severity' });
  const worst = h('ol', { class: 'worst', 'aria-label': 'Worst devices by score' });
  const types = h('ul', { class: 'bars', 'aria-label': 'Devices by type' });
  const panel = (title, body, extra) => h('section', { class: 'panel', 'aria-label': title }, h('h2', { class: 'panel-title' }, title, extra ? h('span', { class: 'panel-note' }, extra) : ''), body);
  const root = h('div', { class: 'fleet-top' },
    kpis,
    h('div', { class: 'panel-grid' },
      panel('Online and offline', countsBox, 'last 24 h'),
      panel('Score distribution', scoresBox),
      panel('Alerts by severity', severity),
      panel('Worst devices', worst),
      panel('By device type', types)),
  );
  let counts = null;
  let scores = null;
  // Charts need their container in the page to know their width.
  requestAnimationFrame(() => {
    counts = countsChart(countsBox, { labels: ['Online', 'Offline'] });
    scores = barChart(scoresBox, { categories: BANDS, xLabel: 'Health score', yLabel: 'Devices' });
    update();
  });

  function bar(label, value, max, cls, iconName) {
    const meter = h('span', { class: 'bar-track', 'aria-hidden': 'true' }, h('span', { class: `bar-fill ${cls}` }));
    meter.firstChild.style.width = `${max > 0 ? (value / max) * 100 : 0}%`;
    return h('li', {}, iconName ? icon(iconName, `icon ${cls}`) : '', h('span', { class: 'bar-label' }, label), meter, h('b', { class: 'bar-value' }, count(value)));
  }

  function update() {
    const t = store.totals();
    const set = (key, value, sub = '') => {
      setText(kpis.querySelector(`[data-kpi="${key}"] .kpi-value`), count(value));
      setText(kpis.querySelector(`[data-kpi="${key}"] .kpi-sub`), sub);
    };
    const share = (n) => (t.devices ? `${Math.round((n / t.devices) * 100)} %` : '');
    set('devices', t.devices, t.unknown ? `${count(t.unknown)} never heard` : '');
    set('online', t.online, share(t.online));
    set('offline', t.offline, share(t.offline));
    set('flapping', t.flapping);
    const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
    for (const a of store.activeAlerts.values()) bySeverity[a.severity] = (bySeverity[a.severity] ?? 0) + 1;
    set('alerts', store.activeAlerts.size, SEVERITIES.filter((s) => bySeverity[s]).map((s) => `${bySeverity[s]} ${s}`).join(' · '));

    const maxSeverity = Math.max(0, ...Object.values(bySeverity));
    severity.replaceChildren(...SEVERITIES.map((s) => bar(s, bySeverity[s], maxSeverity, `sev-${s}`, severityIcon(s))));
    worst.replaceChildren(...worstDevices(5).map((d) =>
      h('li', {}, h('a', { href: `#/device/${encodeURIComponent(d.id)}` }, d.name ? `${d.name} (${d.id})` : d.id),
        h('span', { class: `score-pill band-${scoreBand(d.score)}` }, score(d.score)))));
    if (worst.childElementCount === 0) worst.append(h('li', { class: 'muted' }, 'No scores yet'));
    const typeRows = [...t.types.entries()].sort((a, b) => b[1].total - a[1].total).slice(0, 6);
    const maxType = Math.max(0, ...typeRows.map(([, v]) => v.total));
    types.replaceChildren(...typeRows.map(([type, v]) => {
      const li = bar(type, v.total, maxType, 'type');
      li.append(h('span', { class: 'bar-sub' }, `${count(v.online)} online`));
      return li;
    }));
    if (types.childElementCount === 0) types.append(h('li', { class: 'muted' }, 'No devices yet'));
    if (counts && store.history[0].length > 0) {
      counts.setData(store.history);
      countsBox.dataset.samples = String(store.history[0].length);
    }
    scores?.setData([BANDS.map((_b, i) => i), t.buckets]);
  }

  return { root, update, destroy: () => (counts?.destroy(), scores?.destroy()) };
}

/** The n lowest scores, in one pass (no sort of the fleet). */
function worstDevices(n) {
  const out = [];
  for (const d of store.devices.values()) {
    if (typeof d.score !== 'number') continue;
    if (out.length < n) out.push(d);
    else if (d.score < out[n - 1].score) out[n - 1] = d;
    else continue;
    out.sort((a, b) => a.score - b.score);
  }
  return out;
}
