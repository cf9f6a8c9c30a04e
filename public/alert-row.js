// One alert as a table row (a card on phones): severity, device, rule, value against threshold,
// raised at and age, state, and Acknowledge while it is raised. Shared by the alerts and device views.
import { h, icon } from './dom.js';
import { age, localTime, parseTime, reading, severityIcon } from './format.js';

export function valueText(a) {
  const d = a.data ?? {};
  if (typeof d.value !== 'number') {
    if (typeof d.devices === 'number') return `${d.devices.toLocaleString()} devices`;
    return '—';
  }
  const metric = d.metric ?? a.anomaly_type;
  if (typeof d.threshold !== 'number') return reading(metric, d.value);
  const op = d.value < d.threshold ? '<' : '>';
  return `${reading(metric, d.value)} ${op} ${reading(metric, d.threshold)}`;
}

export function stateText(a) {
  if (a.state === 'acknowledged') return a.acknowledged_by ? `acknowledged by ${a.acknowledged_by}` : 'acknowledged';
  if (a.state === 'cleared' && a.cleared_at) return `cleared ${localTime(parseTime(a.cleared_at))}`;
  return a.state;
}

export const COLUMNS = ['Severity', 'Device', 'Rule', 'Value vs threshold', 'Raised', 'State', ''];

export function alertRow(a, onAck, { device = true } = {}) {
  const raised = parseTime(a.raised_at);
  const metric = a.data?.metric ? ` (${a.data.metric})` : '';
  const cell = (label, ...content) => h('td', { 'data-label': label }, ...content);
  return h('tr', { 'data-alert': a.alert_id, 'data-state': a.state, class: 'alert-row' },
    cell('Severity', h('span', { class: `sev sev-${a.severity}` }, icon(severityIcon(a.severity)), a.severity)),
    device ? cell('Device', a.device_id === '*' ? 'whole fleet' : h('a', { href: `#/device/${encodeURIComponent(a.device_id)}` }, a.device_id)) : null,
    cell('Rule', h('span', { class: 'rule' }, a.anomaly_type), h('span', { class: 'muted' }, metric)),
    cell('Value vs threshold', h('span', { class: 'num' }, valueText(a))),
    cell('Raised', h('time', { datetime: a.raised_at ?? '' }, localTime(raised)), ' ', h('span', { class: 'muted', 'data-ago': raised ?? '' }, age(raised))),
    cell('State', h('span', { class: `state-badge state-${a.state}` }, stateText(a))),
    cell('Action', a.state === 'raised' ? h('button', { type: 'button', class: 'btn btn-small', onclick: (e) => onAck(a, e.currentTarget) }, 'Acknowledge') : ''),
  );
}

/** Ticks the "… ago" of alert rows in a container. */
export function tickAges(root) {
  for (const el of root.querySelectorAll('[data-ago]')) if (el.dataset.ago) el.textContent = age(Number(el.dataset.ago));
}
