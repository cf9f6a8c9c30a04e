// Device view: subscribes to the device (snapshot, then live frames) and lays out its panels:
// metrics charts, 24 h status, score components, alerts, commands and settings.
import { ApiError, enc, json } from './api.js';
import { alertRow, COLUMNS, tickAges } from './alert-row.js';
import { deviceCharts } from './device-charts.js';
import { deviceCommands } from './device-commands.js';
import { deviceSettings } from './device-settings.js';
import { h, icon } from './dom.js';
import { age, dbm, parseTime, percent, statusIcon } from './format.js';
import { scorePanel } from './score-panel.js';
import { statusTimeline } from './status-timeline.js';

export function deviceView(main, id, live) {
  const title = h('h1', { class: 'view-title' }, id);
  const subtitle = h('p', { class: 'muted' });
  const statusBox = h('span', { class: 'status status-unknown' }, icon('unknown'), h('span', { id: 'device-status' }, 'unknown'));
  const facts = h('dl', { class: 'facts' });
  const alertsBody = h('tbody');
  const alertsNote = h('p', { class: 'muted', role: 'status' });
  const score = scorePanel();
  const timeline = statusTimeline(id);
  const commands = deviceCommands(id);
  const settings = deviceSettings(id, (d) => {
    title.textContent = d.name ? d.name : id;
    subtitle.textContent = `${d.name ? `${id} · ` : ''}${d.type ? `type ${d.type}` : 'no type set'}`;
  });
  const alerts = new Map();
  let snapshot = null;
  let charts = null;

  const alertsPanel = h('section', { class: 'panel', 'aria-label': 'Alerts of this device' },
    h('h2', { class: 'panel-title' }, 'Alerts'), alertsNote,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data cards-on-phone', id: 'device-alerts', 'aria-label': 'Alerts of this device' },
      h('thead', {}, h('tr', {}, ...COLUMNS.filter((c) => c !== 'Device').map((c) => h('th', { scope: 'col' }, c || h('span', { class: 'sr-only' }, 'Action'))))), alertsBody)));
  const layout = h('div', { class: 'device-grid' });
  main.replaceChildren(h('div', { id: 'device', class: 'view' },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Fleet'), ' / ', h('span', { 'aria-current': 'page' }, id)),
    h('div', { class: 'device-head' }, h('div', {}, title, subtitle), statusBox),
    facts, layout));
  layout.append(h('p', { class: 'muted' }, `Loading ${id}…`));

  function drawFacts() {
    const t = snapshot?.telemetry;
    const fact = (label, value, extra = {}) => [h('div', { class: 'fact' }, h('dt', {}, label), h('dd', extra, value))];
    facts.replaceChildren(
      ...fact('Last seen', age(parseTime(snapshot?.last_seen)), { 'data-ago': parseTime(snapshot?.last_seen) ?? '', id: 'device-last-seen' }),
      ...fact('Battery', percent(t?.battery_level), { id: 'device-battery' }),
      ...fact('Signal', dbm(t?.rssi)),
      ...fact('Active alerts', String([...alerts.values()].filter((a) => a.state !== 'cleared').length)),
    );
    const status = snapshot?.status ?? 'unknown';
    statusBox.className = `status status-badge-lg status-${status}`;
    statusBox.replaceChildren(icon(statusIcon(status)), h('span', { id: 'device-status' }, status), snapshot?.flapping ? h('span', { class: 'tag tag-warn' }, 'flapping') : '');
  }

  function drawAlerts() {
    const list = [...alerts.values()].sort((a, b) => (a.raised_at < b.raised_at ? 1 : -1)).slice(0, 50);
    alertsBody.replaceChildren(...list.map((a) => alertRow(a, acknowledge, { device: false })));
    if (list.length === 0) alertsBody.append(h('tr', {}, h('td', { colspan: '6', class: 'empty' }, 'No alerts.')));
  }

  async function acknowledge(a, button) {
    button.disabled = true;
    try {
      alerts.set(a.alert_id, { ...a, ...(await json(`/alerts/${enc(a.alert_id)}/ack`, { method: 'POST', body: { by: 'dashboard' } })) });
      drawAlerts();
    } catch (e) {
      button.disabled = false;
      alertsNote.textContent = `Not acknowledged: ${e.message}`;
    }
  }

  function firstSnapshot() {
    const sensors = Object.keys(snapshot.telemetry?.metrics ?? {});
    const thresholds = {};
    for (const a of alerts.values()) if (a.data?.metric && typeof a.data.threshold === 'number') thresholds[a.data.metric.replace(/^metrics\./, '')] = a.data.threshold;
    charts = deviceCharts(id, { sensors, thresholds });
    layout.replaceChildren(charts.root, h('div', { class: 'device-side' }, timeline.root, score.root), alertsPanel, commands.root, settings.root);
    charts.start(snapshot.telemetry);
    timeline.start();
    commands.start();
  }

  function onFrame(f) {
    if (f.type === 'snapshot') {
      const first = snapshot === null;
      snapshot = f.data;
      for (const a of f.data.active_alerts) alerts.set(a.alert_id, a);
      if (first) firstSnapshot();
      score.update(snapshot.health);
      drawAlerts();
    } else if (!snapshot) return;
    else if (f.type === 'device_update') {
      snapshot.telemetry = f.data;
      snapshot.last_seen = f.data.received_at;
      charts?.live(f.data);
    } else if (f.type === 'status_change') {
      snapshot.status = f.status;
      snapshot.flapping = f.flapping;
      snapshot.last_seen = f.last_seen ?? snapshot.last_seen;
      timeline.live(f);
    } else if (f.type === 'health_score') {
      snapshot.health = { score: f.score, components: f.components, timestamp: f.timestamp };
      score.update(snapshot.health);
    } else if (f.type === 'anomaly_alert') {
      const a = alerts.get(f.alert_id) ?? { alert_id: f.alert_id, device_id: f.device_id, anomaly_type: f.anomaly_type, severity: f.severity, raised_at: f.timestamp };
      alerts.set(f.alert_id, { ...a, data: f.data ?? a.data, state: f.state === 'updated' ? a.state : f.state, ...(f.state === 'cleared' ? { cleared_at: f.timestamp } : {}) });
      drawAlerts();
    } else if (f.type === 'command_update') commands.live(f);
    drawFacts();
  }

  let unsubscribe = () => {};
  let tick = 0;
  let left = false;
  function begin(device) {
    settings.show(device);
    // The stored alerts (cleared ones too) load beside the snapshot's active ones.
    json(`/alerts?state=all&device_id=${enc(id)}&limit=50`).then((page) => {
      for (const a of page.alerts) if (!alerts.has(a.alert_id) || alerts.get(a.alert_id).state === a.state) alerts.set(a.alert_id, a);
      drawAlerts();
      drawFacts();
    }).catch((e) => (alertsNote.textContent = `Could not load alerts: ${e.message}`));
    unsubscribe = live.subscribeDevice(id, onFrame);
    tick = setInterval(() => {
      tickAges(main);
      timeline.tick();
    }, 1000);
    drawFacts();
  }

  // The device first: an id the hub does not know gets one message, and nothing else is asked for.
  json(`/devices/${enc(id)}`).then(
    (device) => left || begin(device),
    (e) => {
      if (left) return;
      if (e instanceof ApiError && e.status === 404) {
        document.title = 'No such device · Vigil';
        main.replaceChildren(h('div', { id: 'device', class: 'view' },
          h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Fleet'), ' / ', h('span', { 'aria-current': 'page' }, id)),
          h('section', { class: 'panel not-found', role: 'alert' },
            h('h1', { class: 'view-title' }, 'No such device'),
            h('p', {}, 'The hub knows no device ', h('code', {}, id), '. It may have been deleted, or the link has a typo.'),
            h('p', {}, h('a', { href: '#/', class: 'btn' }, '← Back to Fleet')))));
      } else layout.replaceChildren(h('p', { class: 'form-message', role: 'status' }, `Could not load ${id}: ${e.message}`));
    },
  );
  return () => {
    left = true;
    unsubscribe();
    clearInterval(tick);
    charts?.destroy();
    timeline.destroy();
  };
}
