// Vigil dashboard: plain DOM, no dependencies. Live data comes over the WebSocket protocol
// (subscribe_all for the fleet, subscribe_device for a device); REST loads the initial state.
const $ = (sel, el = document) => el.querySelector(sel);
const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (k === 'style') el.style.cssText = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(c ?? ''));
  return el;
};

const state = { devices: new Map(), alerts: [], activeBySeverity: {}, sort: { key: 'id', dir: 1 }, filter: { status: '', type: '', text: '' }, device: null };
const ROW = 32;
let key = sessionStorage.getItem('vigil-key') || '';
let ws = null;
let wsOpen = false;
let backoff = 1000;
let nextId = 1;

// ---- REST ----
async function api(path, init = {}) {
  // The hub takes JSON bodies only as application/json (a text/plain POST is what a foreign page could send).
  const headers = { ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers || {}), ...(key ? { 'x-api-key': key } : {}) };
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) {
    showLogin('The hub needs a valid API key.');
    throw new Error('unauthorized');
  }
  return res;
}

function showLogin(message) {
  $('#login').hidden = false;
  $('#login-error').textContent = message;
  $('#key').focus();
}

$('#login').addEventListener('submit', (e) => {
  e.preventDefault();
  key = $('#key').value.trim();
  sessionStorage.setItem('vigil-key', key);
  $('#login').hidden = true;
  start();
});

async function loadFleet() {
  state.devices.clear();
  state.activeBySeverity = {};
  const active = await (await api('/alerts?state=active&limit=1000')).json();
  for (const a of active.alerts) state.activeBySeverity[a.severity] = (state.activeBySeverity[a.severity] || 0) + 1;
  for (let offset = 0; ; offset += 1000) {
    const page = await (await api(`/devices?limit=1000&offset=${offset}`)).json();
    for (const d of page.devices) state.devices.set(d.device_id, { ...d, last_seen: d.last_seen ? Date.parse(d.last_seen) : null });
    if (offset + 1000 >= page.total) break;
  }
}

// ---- WebSocket with reconnect and resume ----
let renewTimer = null;

async function wsToken() {
  return (await api('/ws-token', { method: 'POST' })).json().catch(() => ({}));
}

// A session made with a ws-token ends when the token expires (close 4440): send a fresh one before.
function renewBefore(token) {
  clearTimeout(renewTimer);
  if (!token.expires_at) return;
  renewTimer = setTimeout(async () => {
    try {
      const fresh = await wsToken();
      if (fresh.token && wsOpen) {
        send({ type: 'auth', token: fresh.token });
        renewBefore(fresh);
      }
    } catch {
      /* the close that follows reconnects */
    }
  }, Math.max(1000, (Date.parse(token.expires_at) - Date.now()) / 2));
}

async function connect() {
  let url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  let token = {};
  if (key) {
    token = await wsToken();
    if (token.token) url += `?token=${encodeURIComponent(token.token)}`;
  }
  ws = new WebSocket(url);
  renewBefore(token);
  ws.onopen = () => {
    wsOpen = true;
    backoff = 1000;
    setConnection(true, 'live');
    send({ type: 'subscribe_all' });
    // Resume: with the epoch and last seq seen, the hub sends only what was missed (or a fresh snapshot).
    const dv = state.device;
    if (dv) send({ type: 'subscribe_device', device_id: dv.id, ...(dv.epoch ? { since_seq: dv.seq, epoch: dv.epoch } : {}) });
  };
  ws.onmessage = (e) => onFrame(JSON.parse(e.data));
  ws.onclose = (e) => {
    wsOpen = false;
    clearTimeout(renewTimer);
    if (e.code === 4401) return showLogin('The API key was refused.');
    if (e.code === 4410) return showLogin('The API key was revoked.');
    const wait = backoff;
    backoff = Math.min(30_000, backoff * 2);
    setConnection(false, `disconnected — reconnecting in ${Math.round(wait / 1000)} s`);
    setTimeout(async () => {
      try {
        await loadFleet(); // resume: refresh what was missed, then the stream
        render();
      } catch {
        /* the hub is still away */
      }
      connect();
    }, wait);
  };
}

function send(message) {
  if (wsOpen) ws.send(JSON.stringify({ ...message, id: nextId++ }));
}

function setConnection(up, text) {
  const el = $('#connection');
  el.textContent = up ? `● ${text}` : `○ ${text}`;
  el.className = `conn ${up ? 'up' : 'down'}`;
}

const unread = new Set();

async function readNewDevices() {
  const ids = [...unread].slice(0, 1000);
  for (const id of ids) unread.delete(id);
  if (unread.size > 0) setTimeout(readNewDevices, 500);
  try {
    const res = await api('/status/batch', { method: 'POST', body: JSON.stringify({ device_ids: ids }) });
    if (!res.ok) return;
    for (const s of (await res.json()).devices) {
      const d = state.devices.get(s.device_id);
      if (d) Object.assign(d, { battery_level: s.battery_level ?? d.battery_level, rssi: s.rssi ?? d.rssi });
    }
    scheduleRender();
  } catch {
    /* shown by the connection state */
  }
}

function device(id) {
  let d = state.devices.get(id);
  if (!d) {
    state.devices.set(id, (d = { device_id: id, status: 'unknown', active_alerts: 0, health_score: null, last_seen: null }));
    // subscribe_all carries no raw telemetry: read new devices' latest readings, batched.
    unread.add(id);
    if (unread.size === 1) setTimeout(readNewDevices, 500);
  }
  return d;
}

function onFrame(f) {
  // `*` is the fleet itself (a mass-offline incident), not a device.
  const d = f.device_id && f.device_id !== '*' ? device(f.device_id) : null;
  if (f.type === 'status_change') {
    d.status = f.status;
    d.flapping = f.flapping;
    d.last_seen = f.last_seen ? Date.parse(f.last_seen) : d.last_seen;
  } else if (f.type === 'health_score') d.health_score = f.score;
  else if (f.type === 'anomaly_alert') {
    if (!d) {
      state.alerts.unshift(f);
      scheduleRender();
      return;
    }
    const bySeverity = state.activeBySeverity;
    if (f.state === 'raised') {
      d.active_alerts++;
      bySeverity[f.severity] = (bySeverity[f.severity] || 0) + 1;
    }
    if (f.state === 'cleared') {
      d.active_alerts = Math.max(0, d.active_alerts - 1);
      bySeverity[f.severity] = Math.max(0, (bySeverity[f.severity] || 0) - 1);
    }
    state.alerts.unshift(f);
    state.alerts.length = Math.min(state.alerts.length, 500);
  } else if (f.type === 'device_update') {
    d.battery_level = f.data.battery_level;
    d.rssi = f.data.rssi;
    d.last_seen = Date.parse(f.data.received_at);
  }
  if (state.device && f.device_id === state.device.id) onDeviceFrame(f);
  scheduleRender();
}

// Bursts of frames are applied to the state at once and drawn at most every 250 ms: a fleet of
// 10k devices changing together costs one sort and one screen of rows, not one per frame.
let pending = false;
let lastRender = 0;
function scheduleRender() {
  if (pending) return;
  pending = true;
  setTimeout(() => requestAnimationFrame(() => {
    pending = false;
    lastRender = performance.now();
    render();
  }), Math.max(0, 250 - (performance.now() - lastRender)));
}

// ---- views ----
const ago = (ms) => (ms === null ? '—' : `${Math.max(0, Math.round((Date.now() - ms) / 1000))} s ago`);
const scoreClass = (s) => (s === null || s === undefined ? '' : s >= 80 ? 'score-good' : s >= 50 ? 'score-mid' : 'score-bad');

function render() {
  const route = location.hash.replace(/^#/, '') || '/';
  if (route.startsWith('/device/')) return renderDevice(decodeURIComponent(route.slice(8)));
  if (state.device) leaveDevice();
  if (route === '/alerts') return renderAlerts();
  renderFleet();
}

function visibleDevices() {
  const { status, type, text } = state.filter;
  const list = [...state.devices.values()].filter(
    (d) => (!status || d.status === status) && (!type || d.type === type) && (!text || d.device_id.toLowerCase().includes(text.toLowerCase())),
  );
  const { key: k, dir } = state.sort;
  const value = (d) => (k === 'id' ? d.device_id : d[k] ?? -Infinity);
  return list.sort((a, b) => (value(a) < value(b) ? -dir : value(a) > value(b) ? dir : 0));
}

function renderFleet() {
  const main = $('#view');
  let shell = $('#fleet', main);
  if (!shell) {
    main.replaceChildren(
      (shell = h('div', { id: 'fleet' },
        h('div', { class: 'cards', id: 'cards', 'aria-live': 'polite' }),
        h('div', { class: 'filters' },
          h('label', {}, 'Status', h('select', { id: 'f-status', onchange: (e) => ((state.filter.status = e.target.value), renderFleet()) },
            h('option', { value: '' }, 'all'), h('option', { value: 'online' }, 'online'), h('option', { value: 'offline' }, 'offline'), h('option', { value: 'unknown' }, 'unknown'))),
          h('label', {}, 'Type', h('input', { id: 'f-type', placeholder: 'any', oninput: (e) => ((state.filter.type = e.target.value), renderFleet()) })),
          h('label', {}, 'Search', h('input', { id: 'f-text', type: 'search', placeholder: 'device id', oninput: (e) => ((state.filter.text = e.target.value), renderFleet()) })),
        ),
        h('div', { class: 'grid-head', role: 'row' },
          ...[['id', 'Device'], ['status', 'Status'], ['last_seen', 'Last seen'], ['health_score', 'Score'], ['battery_level', 'Battery'], ['rssi', 'RSSI'], ['active_alerts', 'Alerts']].map(([k, label]) =>
            h('button', { role: 'columnheader', onclick: () => ((state.sort = { key: k, dir: state.sort.key === k ? -state.sort.dir : 1 }), renderFleet()) }, label)),
        ),
        h('div', { class: 'viewport', id: 'rows', role: 'table', 'aria-label': 'Devices', tabindex: '0', onscroll: () => renderRows() }, h('div', { id: 'spacer' })),
      )),
    );
  }
  const all = [...state.devices.values()];
  $('#cards').replaceChildren(
    ...[
      ['Devices', all.length],
      ['Online', all.filter((d) => d.status === 'online').length],
      ['Offline', all.filter((d) => d.status === 'offline').length],
      ['Flapping', all.filter((d) => d.flapping).length],
      ['Active alerts', all.reduce((n, d) => n + (d.active_alerts || 0), 0)],
      ...['critical', 'major', 'minor', 'warning', 'info'].filter((sv) => state.activeBySeverity[sv] > 0).map((sv) => [`· ${sv}`, state.activeBySeverity[sv]]),
    ].map(([label, n]) => h('div', { class: 'card' }, label, h('b', {}, String(n)))),
  );
  state.rows = visibleDevices();
  renderRows();
}

// A virtualised list: only the rows in view exist in the DOM, so 10k devices stay smooth.
function renderRows() {
  const viewport = $('#rows');
  if (!viewport || !state.rows) return;
  const spacer = $('#spacer');
  spacer.style.height = `${state.rows.length * ROW}px`;
  const first = Math.floor(viewport.scrollTop / ROW);
  const count = Math.ceil(viewport.clientHeight / ROW) + 2;
  const rows = state.rows.slice(first, first + count).map((d, i) =>
    h('div', { class: 'row', role: 'row', style: `top:${(first + i) * ROW}px`, tabindex: '0', 'data-id': d.device_id,
      onclick: () => (location.hash = `#/device/${encodeURIComponent(d.device_id)}`),
      onkeydown: (e) => e.key === 'Enter' && (location.hash = `#/device/${encodeURIComponent(d.device_id)}`) },
      h('span', { role: 'cell' }, d.device_id),
      h('span', { role: 'cell', class: `status-${d.status}` }, d.status + (d.flapping ? ' (flapping)' : '')),
      h('span', { role: 'cell', 'data-ago': d.last_seen ?? '' }, ago(d.last_seen)),
      h('span', { role: 'cell', class: `score ${scoreClass(d.health_score)}` }, d.health_score ?? '—'),
      h('span', { role: 'cell' }, d.battery_level ?? '—'),
      h('span', { role: 'cell' }, d.rssi ?? '—'),
      h('span', { role: 'cell' }, String(d.active_alerts || 0)),
    ));
  spacer.replaceChildren(...rows);
}

setInterval(() => {
  for (const el of document.querySelectorAll('[data-ago]')) if (el.dataset.ago) el.textContent = ago(Number(el.dataset.ago));
}, 1000);

function renderAlerts() {
  const main = $('#view');
  const severity = state.alertSeverity || '';
  main.replaceChildren(
    h('h2', {}, 'Alerts'),
    h('label', {}, 'Severity ', h('select', { onchange: (e) => ((state.alertSeverity = e.target.value), renderAlerts()) },
      ...['', 'critical', 'major', 'minor', 'warning', 'info'].map((s) => h('option', { value: s, ...(s === severity ? { selected: '' } : {}) }, s || 'all')))),
    h('table', { 'aria-label': 'Alert feed' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Device'), h('th', {}, 'Type'), h('th', {}, 'Severity'), h('th', {}, 'State'))),
      h('tbody', {}, ...state.alerts.filter((a) => !severity || a.severity === severity).map((a) =>
        h('tr', {}, h('td', {}, new Date(a.timestamp ?? a.raised_at).toLocaleTimeString()),
          h('td', {}, h('a', { href: `#/device/${encodeURIComponent(a.device_id)}` }, a.device_id)),
          h('td', {}, a.anomaly_type), h('td', { class: `sev-${a.severity}` }, a.severity), h('td', {}, a.state))))),
  );
}

// ---- device view ----
function leaveDevice() {
  send({ type: 'unsubscribe_device', device_id: state.device.id });
  state.device = null;
}

async function renderDevice(id) {
  if (state.device?.id !== id) {
    if (state.device) leaveDevice();
    state.device = { id, epoch: null, seq: 0, snapshot: null, points: [], alerts: new Map(), commands: [], timeline: [] };
    send({ type: 'subscribe_device', device_id: id });
    const [history, statuses, alerts, commands] = await Promise.all([
      api(`/status/${encodeURIComponent(id)}/history?limit=200`).then((r) => (r.ok ? r.json() : { history: [] })),
      api(`/status/${encodeURIComponent(id)}/history?kind=status&limit=200`).then((r) => (r.ok ? r.json() : { history: [] })),
      api(`/alerts?state=all&device_id=${encodeURIComponent(id)}&limit=50`).then((r) => (r.ok ? r.json() : { alerts: [] })),
      api(`/devices/${encodeURIComponent(id)}/commands?limit=20`).then((r) => (r.ok ? r.json() : { commands: [] })),
    ]).catch(() => [{ history: [] }, { history: [] }, { alerts: [] }, { commands: [] }]);
    if (state.device?.id !== id) return;
    state.device.points = history.history
      .map((p) => ({ t: Date.parse(p.timestamp), battery: p.battery_level, rssi: p.rssi, response: p.response_time_ms, errors: p.error_rate, ...(p.metrics || {}) }))
      .reverse();
    state.device.timeline = statuses.history.map((s) => ({ t: Date.parse(s.timestamp), status: s.status })).reverse();
    for (const a of alerts.alerts) state.device.alerts.set(a.alert_id, a);
    state.device.commands = commands.commands;
  }
  drawDevice();
}

function onDeviceFrame(f) {
  const dv = state.device;
  if (f.type !== 'snapshot' && typeof f.seq === 'number') {
    // Frames also sent on the fleet channel arrive twice; a resumed stream may overlap what was seen.
    if (f.seq <= dv.seq) return;
    dv.seq = f.seq;
  }
  if (f.type === 'snapshot') {
    dv.epoch = f.epoch;
    dv.seq = f.seq;
    dv.snapshot = f.data;
    for (const a of f.data.active_alerts) dv.alerts.set(a.alert_id, a);
  } else if (f.type === 'device_update') {
    dv.points.push({ t: Date.parse(f.timestamp), battery: f.data.battery_level, rssi: f.data.rssi, response: f.data.response_time_ms, errors: f.data.error_rate, ...(f.data.metrics || {}) });
    if (dv.points.length > 500) dv.points.shift();
    if (dv.snapshot) dv.snapshot.telemetry = f.data;
  } else if (f.type === 'status_change') {
    if (dv.snapshot) dv.snapshot.status = f.status;
    dv.timeline.push({ t: Date.parse(f.timestamp), status: f.status });
  } else if (f.type === 'health_score') {
    if (dv.snapshot) dv.snapshot.health = { score: f.score, components: f.components };
  } else if (f.type === 'anomaly_alert') {
    const a = dv.alerts.get(f.alert_id) || { alert_id: f.alert_id, anomaly_type: f.anomaly_type, severity: f.severity };
    dv.alerts.set(f.alert_id, { ...a, state: f.state === 'updated' ? a.state : f.state });
  } else if (f.type === 'command_update') {
    dv.commands = [{ ...f }, ...dv.commands.filter((c) => c.command_id !== f.command_id)].slice(0, 20);
  }
}

const STANDARD = new Set(['t', 'battery', 'rssi', 'response', 'errors']);
const sensorNames = (points) => [...new Set(points.flatMap((p) => Object.keys(p)).filter((k) => !STANDARD.has(k)))].slice(0, 6);
function range(points, field) {
  const values = points.map((p) => p[field]).filter((v) => typeof v === 'number');
  const min = Math.min(...values);
  const max = Math.max(...values);
  return [min, max > min ? max : min + 1];
}

function chart(points, field, label, min, max) {
  const values = points.filter((p) => p[field] !== null && p[field] !== undefined);
  if (values.length < 2) return h('p', {}, `${label}: not enough data`);
  const t0 = values[0].t;
  const t1 = values.at(-1).t || t0 + 1;
  const coords = values.map((p) => `${((p.t - t0) / Math.max(1, t1 - t0)) * 300},${100 - ((p[field] - min) / (max - min)) * 100}`).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 300 100');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${label}, latest ${values.at(-1)[field]}`);
  svg.innerHTML = `<polyline fill="none" stroke="#1a5fd1" stroke-width="2" points="${coords}"/>`;
  return h('figure', {}, svg, h('figcaption', {}, `${label} (latest ${values.at(-1)[field]})`));
}

function drawDevice() {
  const dv = state.device;
  const s = dv.snapshot;
  const main = $('#view');
  if (!s) return main.replaceChildren(h('p', {}, `Loading ${dv.id}…`));
  // Live updates redraw the view: keep what the admin is typing.
  const typing = $('#cmd')?.value ?? '';
  const focused = document.activeElement?.id === 'cmd';
  const health = s.health;
  const now = Date.now();
  const from = dv.timeline[0]?.t ?? now;
  const segments = dv.timeline.map((p, i) => ({ status: p.status, ms: (dv.timeline[i + 1]?.t ?? now) - p.t }));
  const total = Math.max(1, now - from);
  const online = segments.filter((x) => x.status === 'online').reduce((n, x) => n + x.ms, 0);
  main.replaceChildren(
    h('h2', {}, dv.id, ' — ', h('span', { class: `status-${s.status}`, id: 'device-status' }, s.status)),
    h('div', { class: 'panels' },
      h('section', { class: 'panel', 'aria-label': 'Health' },
        h('h3', {}, 'Health score: ', h('span', { id: 'device-score', class: `score ${scoreClass(health?.score)}` }, health ? String(health.score) : '—')),
        health ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Component'), h('th', {}, 'Value'), h('th', {}, 'Score'), h('th', {}, 'Weight'))),
          h('tbody', {}, ...Object.entries(health.components).map(([name, c]) => h('tr', {}, h('td', {}, name), h('td', {}, String(c.value)), h('td', {}, String(c.score)), h('td', {}, String(c.weight)))))) : ''),
      h('section', { class: 'panel', 'aria-label': 'Status timeline' },
        h('h3', {}, `Status timeline — ${Math.round((online / total) * 1000) / 10} % online`),
        h('div', { class: 'timeline' }, ...segments.map((x) => h('span', { class: x.status === 'online' ? 'on' : 'off', style: `width:${(x.ms / total) * 100}%`, title: x.status }))),
        h('p', {}, `Last seen ${s.last_seen ?? '—'}`)),
      h('section', { class: 'panel', 'aria-label': 'Metrics' },
        chart(dv.points, 'battery', 'Battery %', 0, 100),
        chart(dv.points, 'rssi', 'RSSI dBm', -140, 0),
        chart(dv.points, 'response', 'Response time ms', 0, Math.max(1000, ...dv.points.map((p) => p.response ?? 0))),
        chart(dv.points, 'errors', 'Error rate', 0, 1),
        ...sensorNames(dv.points).map((name) => chart(dv.points, name, name, ...range(dv.points, name)))),
      h('section', { class: 'panel', 'aria-label': 'Alerts' }, h('h3', {}, 'Alerts'),
        h('ul', { id: 'device-alerts' }, ...[...dv.alerts.values()].map((a) =>
          h('li', { 'data-alert': a.alert_id, 'data-state': a.state }, h('span', { class: `sev-${a.severity}` }, a.severity), ` ${a.anomaly_type} — ${a.state} `,
            a.state === 'raised' ? h('button', { onclick: () => ackAlert(a.alert_id) }, 'Acknowledge') : '')))),
      h('section', { class: 'panel', 'aria-label': 'Commands' }, h('h3', {}, 'Commands'),
        h('form', { onsubmit: sendCommand }, h('label', { for: 'cmd' }, 'Command '), h('input', { id: 'cmd', required: '', pattern: '[A-Za-z0-9._:-]{1,64}' }), h('button', { type: 'submit' }, 'Send')),
        h('ul', {}, ...dv.commands.map((c) => h('li', {}, `${c.command} — ${c.state}`)))),
    ),
  );
  $('#cmd').value = typing;
  if (focused) $('#cmd').focus();
}

async function ackAlert(alertId) {
  await api(`/alerts/${alertId}/ack`, { method: 'POST', body: JSON.stringify({ by: 'dashboard' }) });
}

async function sendCommand(e) {
  e.preventDefault();
  await api(`/devices/${encodeURIComponent(state.device.id)}/commands`, { method: 'POST', body: JSON.stringify({ command: $('#cmd').value }) });
  $('#cmd').value = '';
}

window.addEventListener('hashchange', render);

async function start() {
  try {
    await loadFleet();
  } catch {
    return; // the login form is showing
  }
  render();
  connect();
}

start();
