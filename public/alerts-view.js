// Alerts view: the stored alerts from GET /alerts (filtered by state and severity, paged with
// next_before for the cleared history), then live transitions from the fleet feed.
import { enc, json } from './api.js';
import { alertRow, COLUMNS, tickAges } from './alert-row.js';
import { h } from './dom.js';
import { SEVERITIES } from './format.js';
import * as store from './fleet-store.js';

// Short labels (a phone's menu is narrow); what "active" means is said beside the menu.
const STATES = [['active', 'Active'], ['raised', 'Raised'], ['acknowledged', 'Acknowledged'], ['cleared', 'Cleared (history)'], ['all', 'All']];
const state = { state: 'active', severity: '' };

export function alertsView(main) {
  const alerts = new Map();
  let nextBefore = null;
  const stateSel = h('select', { id: 'a-state', 'aria-describedby': 'a-state-hint' }, ...STATES.map(([v, label]) => h('option', { value: v, selected: v === state.state }, label)));
  const sevSel = h('select', { id: 'a-severity' }, h('option', { value: '' }, 'Any severity'), ...SEVERITIES.map((s) => h('option', { value: s, selected: s === state.severity }, s)));
  const body = h('tbody');
  const note = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => load(true) }, 'Load older');
  const field = (label, control) => h('label', { class: 'field' }, h('span', {}, label), control);
  main.replaceChildren(h('div', { id: 'alerts', class: 'view' },
    h('h1', { class: 'view-title' }, 'Alerts'),
    h('section', { class: 'panel', 'aria-label': 'Alert list' },
      h('div', { class: 'toolbar' }, field('State', stateSel), field('Severity', sevSel), note),
      h('p', { class: 'muted small hint', id: 'a-state-hint' }, 'Active: raised or acknowledged, not yet cleared.'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data cards-on-phone', 'aria-label': 'Alert feed' },
        h('thead', {}, h('tr', {}, ...COLUMNS.map((c) => h('th', { scope: 'col' }, c || h('span', { class: 'sr-only' }, 'Action'))))), body)),
      more)));

  const matches = (a) => (!state.severity || a.severity === state.severity) &&
    (state.state === 'all' || a.state === state.state || (state.state === 'active' && (a.state === 'raised' || a.state === 'acknowledged')));

  function draw() {
    const list = [...alerts.values()].filter(matches).sort((a, b) => (a.raised_at < b.raised_at ? 1 : -1));
    body.replaceChildren(...list.map((a) => alertRow(a, acknowledge)));
    if (list.length === 0) body.append(h('tr', {}, h('td', { colspan: String(COLUMNS.length), class: 'empty' }, 'No alerts match these filters.')));
    note.textContent = `${list.length.toLocaleString()} shown`;
    more.hidden = nextBefore === null;
  }

  async function load(older = false) {
    const q = `state=${state.state}&limit=100${state.severity ? `&severity=${state.severity}` : ''}${older && nextBefore ? `&before=${enc(nextBefore)}` : ''}`;
    try {
      const page = await json(`/alerts?${q}`);
      if (!older) alerts.clear();
      for (const a of page.alerts) alerts.set(a.alert_id, a);
      nextBefore = page.next_before;
      draw();
    } catch (e) {
      note.textContent = `Could not load alerts: ${e.message}`;
    }
  }

  async function acknowledge(a, button) {
    button.disabled = true;
    try {
      const done = await json(`/alerts/${enc(a.alert_id)}/ack`, { method: 'POST', body: { by: 'dashboard' } });
      alerts.set(a.alert_id, { ...a, ...done });
      draw();
    } catch (e) {
      button.disabled = false;
      note.textContent = `Not acknowledged: ${e.message}`;
    }
  }

  const onFilter = () => {
    state.state = stateSel.value;
    state.severity = sevSel.value;
    load();
  };
  stateSel.addEventListener('change', onFilter);
  sevSel.addEventListener('change', onFilter);

  // Live transitions: a raised alert is added, the others change the state of the row they name.
  const off = store.onFleetFrame((f) => {
    if (f.type !== 'anomaly_alert') return;
    const known = alerts.get(f.alert_id);
    if (!known && f.state !== 'raised') return;
    const base = known ?? { alert_id: f.alert_id, device_id: f.device_id, anomaly_type: f.anomaly_type, severity: f.severity, raised_at: f.timestamp };
    const next = { ...base, data: f.data ?? base.data, state: f.state === 'updated' ? base.state : f.state };
    if (f.state === 'cleared') next.cleared_at = f.timestamp;
    if (f.state === 'acknowledged') next.acknowledged_at = f.timestamp;
    alerts.set(f.alert_id, next);
    draw();
  });
  const tick = setInterval(() => tickAges(body), 1000);
  load();
  return () => {
    off();
    clearInterval(tick);
  };
}
