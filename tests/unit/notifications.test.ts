import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createMetrics } from '../../src/metrics.js';
import { AlertmanagerSink, postableAlertsFor, toPostableAlert } from '../../src/notify/alertmanager-sink.js';
import { NotificationPlanner } from '../../src/notify/planner.js';
import { alertEvent, alertEventId, deviceEvent, isAlertEventData } from '../../src/notify/cloudevents.js';
import { attemptsWithin, backoffMs, giveUpReason, retryPolicyOf, type RetryPolicy } from '../../src/notify/delivery-loop.js';
import { sign, signingKey, verify } from '../../src/notify/signature.js';
import { atLeast, typeMatches, WebhookSink } from '../../src/notify/webhook-sink.js';
import { LEGACY_SINK_NAME, sinkId } from '../../src/notify/sink.js';
import type { Alert } from '../../src/domain/alert.js';

const context = { source: 'https://vigil.example.com', publicUrl: 'https://vigil.example.com', deviceTypeOf: () => 'sensor' };
const alert = (over: Partial<Alert> = {}): Alert => ({
  id: 'a1',
  deviceId: 'dev-1',
  type: 'low_battery',
  severity: 'minor',
  state: 'raised',
  data: { value: 10, metric: 'battery_level', threshold: 20, clear: 25 },
  raisedAt: Date.UTC(2026, 0, 1),
  updatedAt: Date.UTC(2026, 0, 1),
  clearedAt: null,
  acknowledgedAt: null,
  acknowledgedBy: null,
  ...over,
});

describe('webhook signature (Standard Webhooks)', () => {
  const key = signingKey('a-secret-of-some-length');
  const body = '{"id":"e1"}';
  it('verifies what it signed and nothing else', () => {
    const signature = sign(key, 'e1', 1_800_000_000, body);
    expect(signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    const headers = { id: 'e1', timestamp: '1800000000', signature };
    expect(verify(key, headers, body, 1_800_000_010)).toBe(true);
    expect(verify(key, headers, `${body} `, 1_800_000_010)).toBe(false);
    expect(verify(key, { ...headers, id: 'e2' }, body, 1_800_000_010)).toBe(false);
    expect(verify(key, headers, body, 1_800_000_400)).toBe(false); // outside the replay window
    expect(verify(signingKey('another-secret-entirely'), headers, body, 1_800_000_010)).toBe(false);
    expect(verify(key, { ...headers, signature: `v1,bogus ${signature}` }, body, 1_800_000_010)).toBe(true); // rotation: one match is enough
  });
  it('takes whsec_ secrets as base64, as Standard Webhooks libraries do', () => {
    expect(signingKey(`whsec_${Buffer.from('raw key bytes').toString('base64')}`).toString()).toBe('raw key bytes');
  });
  it('is verified by the Node receiver docs/notifications.md shows, for a plain and a whsec_ secret', async () => {
    const docs = readFileSync(fileURLToPath(new URL('../../docs/notifications.md', import.meta.url)), 'utf8');
    const block = [...docs.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!).find((code) => code.includes('function verifyVigil('));
    expect(block, 'the verifier block in docs/notifications.md').toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'vigil-verifier-'));
    try {
      const file = join(dir, 'verifier.mjs');
      writeFileSync(file, `${block!}\nexport { verifyVigil };\n`);
      const { verifyVigil } = (await import(pathToFileURL(file).href)) as { verifyVigil: (secret: string, headers: Record<string, string>, body: string) => boolean };
      const now = Math.floor(Date.now() / 1000);
      for (const secret of ['a-secret-of-some-length', `whsec_${randomBytes(32).toString('base64')}`]) {
        const headers = { 'webhook-id': 'e1', 'webhook-timestamp': String(now), 'webhook-signature': sign(signingKey(secret), 'e1', now, body) };
        expect(verifyVigil(secret, headers, body), secret.slice(0, 6)).toBe(true);
        expect(verifyVigil(secret, headers, `${body} `), secret.slice(0, 6)).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CloudEvents', () => {
  it('gives each transition a stable id; updates carry their time', () => {
    expect(alertEventId(alert(), 'raised')).toBe('a1:raised');
    expect(alertEvent(alert(), 'raised', context).id).toBe(alertEvent(alert(), 'raised', context).id);
    expect(alertEventId(alert({ updatedAt: 5 }), 'updated')).toBe('a1:updated:5');
  });
  it('builds structured-mode events for alerts and device changes', () => {
    const event = alertEvent(alert(), 'raised', context);
    expect(event).toMatchObject({ specversion: '1.0', type: 'vigil.alert.raised', subject: 'dev-1', source: 'https://vigil.example.com' });
    expect(event.data).toMatchObject({ alert_id: 'a1', device_type: 'sensor', dashboard_url: 'https://vigil.example.com/#/device/dev-1' });
    const device = deviceEvent({ deviceId: 'd/2', status: 'offline', previous: 'online', reason: 'timeout', lastSeen: 1000, at: 2000 }, context);
    expect(device).toMatchObject({ id: 'd/2:offline:2000', type: 'vigil.device.offline' });
    expect(isAlertEventData(device.data)).toBe(false);
    expect((device.data as { dashboard_url: string }).dashboard_url).toBe('https://vigil.example.com/#/device/d%2F2');
  });
});

describe('filters', () => {
  it('ranks severities (critical highest) and matches types with prefixes', () => {
    expect(atLeast('critical', 'major')).toBe(true);
    expect(atLeast('minor', 'major')).toBe(false);
    expect(atLeast('bogus', 'info')).toBe(false);
    expect(typeMatches('vigil.alert.raised', [])).toBe(true);
    expect(typeMatches('vigil.alert.raised', ['vigil.alert.*'])).toBe(true);
    expect(typeMatches('vigil.device.online', ['vigil.alert.*', 'vigil.device.offline'])).toBe(false);
  });
  it('applies severity to alert events only', () => {
    const sink = new WebhookSink('webhook-1', 'http://127.0.0.1:1/x?token=t', null, { minSeverity: 'major', types: [] }, { timeoutMs: 100, maxBodyBytes: 1024 });
    expect(sink.target).toBe('http://127.0.0.1:1');
    expect(sink.accepts(alertEvent(alert(), 'raised', context))).toBe(false);
    expect(sink.accepts(alertEvent(alert({ severity: 'critical' }), 'raised', context))).toBe(true);
    expect(sink.accepts(deviceEvent({ deviceId: 'd', status: 'online', previous: null, reason: 'telemetry', lastSeen: 1, at: 1 }, context))).toBe(true);
  });
});

describe('Alertmanager mapping', () => {
  it('labels identify the alert; endsAt only when cleared', () => {
    const raised = toPostableAlert(alertEvent(alert(), 'raised', context).data as never);
    expect(raised.labels).toEqual({ alertname: 'low_battery', device_id: 'dev-1', severity: 'minor', device_type: 'sensor' });
    expect(raised.annotations).toMatchObject({ value: '10', threshold: '20', metric: 'battery_level', alert_id: 'a1' });
    expect(raised.startsAt).toBe('2026-01-01T00:00:00.000Z');
    expect(raised.endsAt).toBeUndefined();
    expect(raised.generatorURL).toBe('https://vigil.example.com/#/device/dev-1');
    const cleared = toPostableAlert(alertEvent(alert({ state: 'cleared', clearedAt: Date.UTC(2026, 0, 2) }), 'cleared', { ...context, publicUrl: null }).data as never);
    expect(cleared.endsAt).toBe('2026-01-02T00:00:00.000Z');
    expect(cleared.generatorURL).toBeUndefined();
    expect(cleared.labels).toEqual(raised.labels);
  });
  it('an escalation ends the label set it leaves (endsAt at the escalation) and posts the new one; later events post one', () => {
    const at = Date.UTC(2026, 0, 1, 0, 5);
    const escalated = alert({ severity: 'critical', updatedAt: at, data: { value: 8, metric: 'battery_level', threshold: 20, escalated_from: 'minor', escalated_at: new Date(at).toISOString() } });
    const event = alertEvent(escalated, 'updated', context);
    const [ended, current] = postableAlertsFor(event.type, event.data as never);
    expect(ended).toMatchObject({ labels: { alertname: 'low_battery', device_id: 'dev-1', severity: 'minor', device_type: 'sensor' }, endsAt: '2026-01-01T00:05:00.000Z', startsAt: '2026-01-01T00:00:00.000Z' });
    expect(ended!.annotations.escalated_to).toBe('critical');
    expect(current).toMatchObject({ labels: { severity: 'critical' } });
    expect(current!.endsAt).toBeUndefined();
    // The alert keeps data.escalated_from: its acknowledgement and clear post its current label set only.
    for (const transition of ['acknowledged', 'cleared'] as const) {
      const later = alertEvent({ ...escalated, state: transition, clearedAt: transition === 'cleared' ? at + 1000 : null }, transition, context);
      expect(postableAlertsFor(later.type, later.data as never).map((a) => a.labels.severity), transition).toEqual(['critical']);
    }
    // The fleet incident growing is an update without escalation: one alert.
    const grown = alertEvent(alert({ type: 'mass_offline', deviceId: '*', data: { count: 30 } }), 'updated', context);
    expect(postableAlertsFor(grown.type, grown.data as never)).toHaveLength(1);
  });
});

describe('retry schedule', () => {
  const retry = { maxAttempts: 20, maxAgeMs: 86_400_000, baseMs: 1000, maxMs: 300_000 };
  it('doubles from the base, capped, with ±20 % jitter', () => {
    expect([1, 2, 3, 4, 10, 30].map((n) => backoffMs(n, retry, () => 0.5))).toEqual([1000, 2000, 4000, 8000, 300_000, 300_000]);
    expect(backoffMs(1, retry, () => 0)).toBe(800);
    expect(backoffMs(1, retry, () => 1)).toBe(1200);
  });

  /** A receiver down for good: attempts as the delivery loop makes them, every wait drawn by `random`; why and when it ends. */
  function outage(retry: RetryPolicy, random: () => number): { reason: string; attempts: number; atMs: number } {
    let atMs = 0;
    for (let attempts = 1; ; attempts++) {
      const reason = giveUpReason(attempts, atMs, true, retry);
      if (reason !== null) return { reason, attempts, atMs };
      atMs += backoffMs(attempts, retry, random);
    }
  }

  it('by default gives an event up at NOTIFY_MAX_AGE_S, not after fewer attempts, at any jitter', () => {
    const retry = retryPolicyOf(loadConfig({}));
    expect(retry.maxAgeMs).toBe(86_400_000);
    for (const random of [() => 0, () => 0.5, () => 0.999999, Math.random]) {
      const end = outage(retry, random);
      expect(end.reason).toBe('NOTIFY_MAX_AGE_S reached');
      expect(end.atMs).toBeGreaterThanOrEqual(86_400_000);
      expect(end.atMs).toBeLessThan(86_400_000 + 1.2 * 300_000);
    }
    // What the docs say: 369 attempts at most (shortest waits), about 296 at the nominal ones.
    expect(retry.maxAttempts).toBe(369);
    expect(outage(retry, () => 0.5).attempts).toBe(297);
    // The age governs for other settings too (derived from them, not a fixed number).
    for (const env of [{ NOTIFY_MAX_AGE_S: '604800' }, { NOTIFY_MAX_AGE_S: '60', NOTIFY_RETRY_BASE_MS: '10', NOTIFY_RETRY_MAX_MS: '100' }, { NOTIFY_RETRY_BASE_MS: '600000', NOTIFY_RETRY_MAX_MS: '86400000' }]) {
      const policy = retryPolicyOf(loadConfig(env));
      expect(outage(policy, () => 0).reason, JSON.stringify(env)).toBe('NOTIFY_MAX_AGE_S reached');
    }
    expect(attemptsWithin(1000, 1000, 1000)).toBe(3); // t=0 and t=800 start before 1 s; the third at 1.6 s is past it
    // Set explicitly, NOTIFY_MAX_ATTEMPTS still ends it first.
    expect(outage(retryPolicyOf(loadConfig({ NOTIFY_MAX_ATTEMPTS: '20' })), () => 0.5)).toMatchObject({ reason: 'NOTIFY_MAX_ATTEMPTS reached', attempts: 20 });
  });
});

describe('sink identity', () => {
  it('is the URL, not its place in the list: stable, distinct per URL, and shows none of it', () => {
    const a = 'https://hooks.example.com/in?token=s3cr3t-team-a';
    const b = 'https://hooks.example.com/in?token=s3cr3t-team-b';
    expect(sinkId('webhook', a)).toMatch(/^webhook-[0-9a-f]{8}$/);
    expect(sinkId('webhook', a)).toBe(sinkId('webhook', ` ${a} `));
    expect(sinkId('webhook', 'HTTPS://Hooks.Example.com:443/in?token=s3cr3t-team-a')).toBe(sinkId('webhook', a));
    expect(sinkId('webhook', a)).not.toBe(sinkId('webhook', b)); // only the token differs: another receiver
    expect(sinkId('alertmanager', 'http://am:9093/')).toBe(sinkId('alertmanager', 'http://am:9093'));
    expect(sinkId('alertmanager', 'http://am:9093')).toMatch(/^alertmanager-[0-9a-f]{8}$/);
    expect(sinkId('alertmanager', 'http://am:9093')).not.toBe(sinkId('alertmanager', 'http://am2:9093'));
    expect(sinkId('webhook', a)).not.toContain('s3cr3t');
    // Never mistaken for a name by position.
    for (const url of [a, b, 'http://x', 'http://y/z']) expect(LEGACY_SINK_NAME.test(sinkId('webhook', url))).toBe(false);
    expect(LEGACY_SINK_NAME.test('webhook-1')).toBe(true);
    expect(LEGACY_SINK_NAME.test('alertmanager-12')).toBe(true);
  });
});

describe('settings', () => {
  it('reads lists of URLs and refuses a bad one without showing the value', () => {
    const config = loadConfig({ ALERT_WEBHOOK_URL: 'https://a.example/x, http://b.example/y', ALERTMANAGER_URL: 'http://am:9093' });
    expect(config.ALERT_WEBHOOK_URL).toContain('b.example');
    expect(config.ALERTMANAGER_RESEND_S).toBe(60);
    expect(() => loadConfig({ ALERT_WEBHOOK_URL: 'https://ok.example,ftp://hidden-token@x' })).toThrow(/ALERT_WEBHOOK_URL \(value not shown/);
    expect(() => loadConfig({ ALERT_WEBHOOK_URL: 'https://ok.example,ftp://hidden-token@x' })).not.toThrow(/hidden-token/);
    expect(() => loadConfig({ ALERT_WEBHOOK_SECRET: 'short' })).toThrow(/ALERT_WEBHOOK_SECRET/);
  });
});

describe('planner', () => {
  it('writes one row per accepting sink; filtered and (outbox full) dropped events are counted', async () => {
    const metrics = createMetrics();
    const limits = { timeoutMs: 100, maxBodyBytes: 1024 };
    const sinks = [new WebhookSink('webhook-1', 'http://127.0.0.1:1', null, { minSeverity: 'info', types: [] }, limits), new AlertmanagerSink('alertmanager-1', 'http://127.0.0.1:2', limits)];
    const planner = new NotificationPlanner(sinks, { source: 's', publicUrl: null }, true, metrics);
    expect(planner.forAlert(alert(), 'raised').map((r) => r.sink)).toEqual(['webhook-1', 'alertmanager-1']);
    expect(planner.forStatusChange({ deviceId: 'd', status: 'online', previous: null, reason: 'telemetry', lastSeen: 1, at: 1 }).map((r) => r.sink)).toEqual(['webhook-1']);
    planner.full = true;
    expect(planner.forAlert(alert(), 'cleared')).toEqual([]);
    const text = await metrics.scrape();
    expect(text).toMatch(/^vigil_notifications_total\{sink="alertmanager-1",outcome="filtered"\} 1$/m);
    expect(text).toMatch(/^vigil_notifications_total\{sink="webhook-1",outcome="dropped"\} 1$/m);
    expect(text).toMatch(/^vigil_notifications_total\{sink="alertmanager-1",outcome="dropped"\} 1$/m);
  });
});

describe('Alertmanager re-send posts', () => {
  it('are cut by NOTIFY_MAX_BODY_BYTES as well as by count, each alert in exactly one, in order', async () => {
    const { chunksWithin } = await import('../../src/notify/alertmanager-resend.js');
    const alerts = Array.from({ length: 1000 }, (_, i) => ({ labels: { alertname: 'low_battery', device_id: `d-${i}`, severity: 'minor' }, annotations: { summary: 's'.repeat(i % 300) }, startsAt: new Date(0).toISOString() }));
    const chunks = chunksWithin(alerts, 500, 64 * 1024);
    expect(chunks.flat()).toEqual(alerts);
    for (const chunk of chunks) {
      expect(chunk.length).toBeLessThanOrEqual(500);
      expect(Buffer.byteLength(JSON.stringify(chunk))).toBeLessThanOrEqual(64 * 1024);
    }
    // One alert over the bound alone: its own post.
    const huge = { labels: { alertname: 'x', device_id: 'big', severity: 'minor' }, annotations: { summary: 'h'.repeat(70_000) }, startsAt: new Date(0).toISOString() };
    expect(chunksWithin([alerts[0]!, huge, alerts[1]!], 500, 64 * 1024)).toEqual([[alerts[0]], [huge], [alerts[1]]]);
    expect(chunksWithin([], 500, 1024)).toEqual([]);
  });
});
