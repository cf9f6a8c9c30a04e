// The dashboard's one live data layer: the views call only subscribeFleet, subscribeDevice,
// ackAlert and onStatus, the interface of public/vigil-client.js, so switching to that client
// changes this file alone. Until then: one WebSocket with token renewal, reconnect with backoff,
// resume of device subscriptions with since_seq/epoch and duplicate suppression by seq.
import { wsToken } from './api.js';

export function createLive({ onRefused }) {
  const fleet = new Set();
  const devices = new Map(); // id → { handlers:Set, seq, epoch }
  const statusFns = new Set();
  let ws = null;
  let open = false;
  let backoff = 1000;
  let nextId = 1;
  let renewTimer = null;
  const pending = new Map(); // request id → { resolve, reject }

  const status = (state, detail) => {
    for (const fn of statusFns) fn({ state, detail });
  };
  const send = (message) => {
    const id = nextId++;
    if (open) ws.send(JSON.stringify({ ...message, id }));
    return id;
  };
  const subscribeMessage = (id, d) => ({ type: 'subscribe_device', device_id: id, ...(d.epoch ? { since_seq: d.seq, epoch: d.epoch } : {}) });

  // A session made with a ws-token ends when it expires (close 4440): send a fresh one before.
  function renewBefore(token) {
    clearTimeout(renewTimer);
    if (!token?.expires_at) return;
    renewTimer = setTimeout(async () => {
      try {
        const fresh = await wsToken();
        if (fresh?.token && open) {
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
    let token = null;
    try {
      token = await wsToken();
    } catch {
      return onRefused('The API key was refused.');
    }
    if (token?.token) url += `?token=${encodeURIComponent(token.token)}`;
    ws = new WebSocket(url);
    renewBefore(token);
    ws.onopen = () => {
      open = true;
      backoff = 1000;
      status('live', 'live');
      if (fleet.size > 0) send({ type: 'subscribe_all', summaries: true });
      for (const [id, d] of devices) send(subscribeMessage(id, d));
    };
    ws.onmessage = (e) => dispatch(JSON.parse(e.data));
    ws.onclose = (e) => {
      open = false;
      clearTimeout(renewTimer);
      for (const p of pending.values()) p.reject(new Error('disconnected'));
      pending.clear();
      if (e.code === 4401) return onRefused('The API key was refused.');
      if (e.code === 4410) return onRefused('The API key was revoked.');
      const wait = backoff;
      backoff = Math.min(30_000, backoff * 2);
      status('down', `reconnecting in ${Math.round(wait / 1000)} s`);
      setTimeout(connect, wait);
    };
  }

  function dispatch(f) {
    if (f.type === 'ack' || f.type === 'error') {
      const p = pending.get(f.id);
      if (p) {
        pending.delete(f.id);
        if (f.type === 'ack') p.resolve(f);
        else p.reject(new Error(f.message ?? f.code));
      }
      return;
    }
    const d = f.device_id === undefined ? undefined : devices.get(f.device_id);
    if (d) {
      // The fleet channel carries some of the same frames, and a resumed stream may overlap what was seen.
      if (f.type === 'snapshot') {
        d.epoch = f.epoch;
        d.seq = f.seq;
        for (const fn of d.handlers) fn(f);
      } else if (typeof f.seq !== 'number' || f.seq > d.seq) {
        if (typeof f.seq === 'number') d.seq = f.seq;
        for (const fn of d.handlers) fn(f);
      }
    }
    if (f.type !== 'snapshot' && f.type !== 'device_update' && f.type !== 'command_update') for (const fn of fleet) fn(f);
  }

  connect();
  return {
    subscribeFleet(_options, onFrame) {
      fleet.add(onFrame);
      if (fleet.size === 1) send({ type: 'subscribe_all', summaries: true });
      return () => {
        fleet.delete(onFrame);
        if (fleet.size === 0) send({ type: 'unsubscribe_all' });
      };
    },
    subscribeDevice(id, onFrame) {
      let d = devices.get(id);
      if (!d) {
        devices.set(id, (d = { handlers: new Set(), seq: 0, epoch: null }));
        send(subscribeMessage(id, d));
      }
      d.handlers.add(onFrame);
      return () => {
        d.handlers.delete(onFrame);
        if (d.handlers.size === 0) {
          devices.delete(id);
          send({ type: 'unsubscribe_device', device_id: id });
        }
      };
    },
    ackAlert(alertId) {
      return new Promise((resolve, reject) => {
        if (!open) return reject(new Error('not connected'));
        pending.set(send({ type: 'ack_alert', alert_id: alertId }), { resolve, reject });
      });
    },
    onStatus(fn) {
      statusFns.add(fn);
      return () => statusFns.delete(fn);
    },
  };
}
