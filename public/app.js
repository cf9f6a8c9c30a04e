// Vigil dashboard: routes between the fleet, alerts and device views, owns the connection state
// and the API key prompt. Data: REST for what is stored, live.js (over vigil-client.js) for the WebSocket feed.
import { hasKey, json, setKey, whenUnauthorized } from './api.js';
import { alertsView } from './alerts-view.js';
import { deviceView } from './device-view.js';
import { $ } from './dom.js';
import { setMetricUnits } from './format.js';
import { fleetView } from './fleet-view.js';
import * as store from './fleet-store.js';
import { createLive } from './live.js';

let live = null;
let leave = () => {};
let wasDown = false;

function showLogin(message) {
  $('#login').hidden = false;
  $('#login-error').textContent = message;
  $('#key').focus();
}
whenUnauthorized(showLogin);

$('#login').addEventListener('submit', (e) => {
  e.preventDefault();
  setKey($('#key').value.trim());
  $('#login').hidden = true;
  start();
});

function setConnection({ state, detail }) {
  const el = $('#connection');
  el.textContent = state === 'live' ? 'Live' : `Offline — ${detail}`;
  el.className = `conn ${state === 'live' ? 'up' : 'down'}`;
  if (state !== 'live') wasDown = true;
}

function onFleetFrame(f) {
  if (f.type !== 'ack') return store.publish(f);
  // The subscribe_all ack, after an outage: unless the `*` feed resumed with nothing lost (recovered:
  // true, the missed frames follow), what was missed is read again; a full fleet summary follows either way.
  if (wasDown && f.recovered !== true) Promise.all([store.loadDevices(), store.loadActiveAlerts()]).catch(() => {});
  wasDown = false;
}

function render() {
  leave();
  const route = location.hash.replace(/^#/, '') || '/';
  const main = $('#view');
  let name = 'fleet';
  if (route.startsWith('/device/')) {
    name = 'device';
    const id = decodeURIComponent(route.slice(8));
    document.title = `${id} · Vigil`;
    leave = deviceView(main, id, live);
  } else if (route === '/alerts') {
    name = 'alerts';
    document.title = 'Alerts · Vigil';
    leave = alertsView(main);
  } else {
    document.title = 'Fleet · Vigil';
    leave = fleetView(main);
  }
  for (const a of document.querySelectorAll('.tabs a[data-route]')) {
    if (a.dataset.route === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

window.addEventListener('hashchange', () => {
  render();
  $('#view').focus({ preventScroll: true });
});

async function start() {
  try {
    // The hub's METRIC_UNITS beside the built-in units (an older hub without them: the built-in ones).
    await Promise.all([store.loadDevices(), store.loadActiveAlerts(), json('/metric-units').then((r) => setMetricUnits(r.units), () => undefined)]);
    store.sample();
    store.loadHistory(); // the past 24 h, before that first sample of the page's own
  } catch {
    if (!hasKey()) showLogin('The hub needs an API key.');
    return; // the login form is showing
  }
  // A session ended over its key (4401/4410) is closed for good: a new key gets a new one.
  if (!live || live.closed) {
    live = createLive({ onRefused: showLogin });
    live.onStatus(setConnection);
    live.subscribeFleet({ summaries: true }, onFleetFrame);
  }
  render();
}

start();
