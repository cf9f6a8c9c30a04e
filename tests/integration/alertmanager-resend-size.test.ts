import { afterAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { httpUrl, startHubWithEnv, testHubEnv } from '../helpers/hub.js';
import { AlertmanagerReceiver, until } from '../helpers/notification-receivers.js';
import { randomSuffix } from '../helpers/services.js';
import { sinkId } from '../../src/notify/sink.js';

/*
 * The Alertmanager re-send posts every active alert every ALERTMANAGER_RESEND_S. With a few hundred
 * active alerts its posts must stay under NOTIFY_MAX_BODY_BYTES (64 KiB by default): a post over it
 * is never sent, and Alertmanager would resolve every firing alert after its resolve_timeout.
 * Embedded hub (PGlite), a real HTTP receiver.
 */
const running: RunningHub[] = [];
const receivers: AlertmanagerReceiver[] = [];
afterAll(async () => {
  for (const h of running) await h.stop();
  for (const r of receivers) await r.down();
});

it('re-sends 400 active alerts in posts under NOTIFY_MAX_BODY_BYTES, every one of them', async () => {
  const receiver = new AlertmanagerReceiver();
  await receiver.up();
  receivers.push(receiver);
  const hub = await startHubWithEnv({
    ...testHubEnv('embedded'),
    ALERTMANAGER_URL: `http://127.0.0.1:${receiver.port}`,
    ALERTMANAGER_RESEND_S: '5',
    NOTIFY_POLL_MS: '100',
    NOTIFY_MAX_BODY_BYTES: '65536',
    HTTP_RATE_PER_S: '100000',
    HTTP_RATE_BURST: '100000',
    MAX_NEW_DEVICES_PER_S: '100000',
  });
  running.push(hub);
  const devices = Array.from({ length: 400 }, (_, i) => `am-${randomSuffix()}-${i}`);
  for (const device_id of devices) {
    const r = await fetch(httpUrl(hub, '/status'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id, battery_level: 3 }) });
    expect(r.status).toBe(200);
  }
  // The raised events come through the outbox first; then a re-send round carries all 400 again.
  await until('every alert delivered once', () => new Set(receiver.posted.map((a) => a.labels.device_id)).size === devices.length, 60_000);
  const delivered = receiver.posted.length;
  await until('a re-send round of every alert', () => receiver.posted.length >= delivered + devices.length, 30_000);
  const resent = new Set(receiver.posted.slice(delivered).map((a) => a.labels.device_id));
  expect(devices.filter((d) => !resent.has(d))).toEqual([]);
  const metrics = await (await fetch(httpUrl(hub, '/metrics'))).text();
  expect(new RegExp(`vigil_notifications_total\\{sink="${sinkId('alertmanager', `http://127.0.0.1:${receiver.port}`)}",outcome="resend_failed"\\} [1-9]`).test(metrics)).toBe(false);
}, 120_000);
