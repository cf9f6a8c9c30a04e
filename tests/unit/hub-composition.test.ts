import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CommandRequest } from '../../src/domain/command.js';
import type { StatusChange } from '../../src/domain/device-status.js';
import { ALL_CHANNEL, Hub, type DeviceObserver } from '../../src/hub/hub.js';
import { DEFAULT_HUB_SETTINGS } from '../../src/hub/hub-settings.js';
import type { Outlets } from '../../src/hub/outlets.js';
import { createMemoryPresence } from '../../src/presence/memory-presence.js';
import { quietBoundary, recordingLocalFanout, recordingSink, telemetry } from '../helpers/hub-parts.js';

/** The Hub facade over its parts, with the in-process presence and fan-out: the paths callers use still meet. */

const T0 = Date.UTC(2026, 0, 1);
const request: CommandRequest = { command: 'reboot', params: {}, timeoutS: 30, maxAttempts: 3, expiresInS: 300 };

async function startedHub(outlets: Partial<Outlets> = {}) {
  const { metrics, faults } = quietBoundary();
  const { fanout, delivered } = recordingLocalFanout();
  const sink = recordingSink();
  const presence = createMemoryPresence({ sweepMs: 250, faults, now: Date.now });
  const hub = new Hub({ ...DEFAULT_HUB_SETTINGS, fanout, presence, sink, metrics, faults, outlets });
  await presence.start(hub);
  return { hub, presence, delivered, sink, metrics };
}

describe('Hub (composition)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('takes settings from config.ts defaults only: the 60 s offline timeout applies', async () => {
    const { hub, presence } = await startedHub();
    hub.ingestTelemetry(telemetry('d1', T0));
    expect(hub.timeoutOf('d1')).toEqual({ ms: 60_000, source: 'default' });
    vi.advanceTimersByTime(59_000);
    expect(hub.registry.get('d1')?.status).toBe('online');
    vi.advanceTimersByTime(1300);
    expect(hub.registry.get('d1')?.status).toBe('offline');
    await presence.stop();
  });

  it('numbers one device channel across parts: readings, status changes and commands share its seq', async () => {
    const { hub, delivered } = await startedHub();
    const followed = hub.follow('d1');
    const first = hub.prepare('d1', null, followed);
    expect(first instanceof Promise ? null : first.seq).toBe(0);
    hub.ingestTelemetry(telemetry('d1', T0));
    const submitted = hub.submitCommand('d1', request, null);
    expect(submitted instanceof Promise).toBe(false);
    const frames = delivered.filter((d) => d.channel === 'd1').map((d) => ({ type: String(d.frame.type), seq: Number(d.frame.seq) }));
    expect(frames.map((f) => f.seq)).toEqual(frames.map((_, i) => i + 1)); // one numbering, no gap
    expect(frames.map((f) => f.type)).toEqual(['status_change', 'health_score', 'device_update', 'health_score', 'command_update']);
    expect(hub.registry.get('d1')?.seq).toBe(frames.length);
  });

  it('sends a command through the MQTT publisher it was given, and tells the observer what it announces', async () => {
    const sent: string[] = [];
    const announced: StatusChange[] = [];
    const { hub } = await startedHub({
      commandPublisher: (deviceId) => void sent.push(deviceId),
      observer: { statusAnnounced: (_s, change) => void announced.push(change), healthScored: () => undefined, forgotten: () => undefined } satisfies DeviceObserver,
    });
    hub.heartbeat('d1', T0);
    hub.submitCommand('d1', request, null);
    expect(sent).toEqual(['d1']);
    expect(announced.map((c) => `${c.status}:${c.reason}`)).toEqual(['online:heartbeat']);
  });

  it('keeps a command queued when no MQTT publisher is given (no broker to send it through)', async () => {
    const { hub } = await startedHub();
    hub.heartbeat('d1', T0);
    const submitted = hub.submitCommand('d1', request, null);
    expect(submitted instanceof Promise ? null : submitted.command.state).toBe('queued');
  });

  it('reads the broker backlog through the facade flag: queued readings count at their own time', async () => {
    const { hub } = await startedHub();
    hub.readingBacklog = true;
    expect(hub.devices.readingBacklog).toBe(true);
    hub.ingestTelemetry(telemetry('d1', T0 - 30_000, T0));
    hub.readingBacklog = false;
    expect(hub.registry.get('d1')?.lastSeen).toBe(T0 - 30_000);
  });

  it('answers the owner operations here without a cluster: forget everywhere, acknowledge anywhere', async () => {
    const { hub } = await startedHub();
    hub.heartbeat('d1', T0);
    await hub.forgetEverywhere('d1');
    expect(hub.registry.get('d1')).toBeUndefined();
    expect(await hub.acknowledgeAlertAnywhere('no-such-alert', 'test', () => true)).toBeNull();
  });

  it('keeps ALL_CHANNEL and the part objects reachable from hub.ts', async () => {
    const { hub } = await startedHub();
    expect(ALL_CHANNEL).toBe('*');
    expect(hub.epoch).toBe(hub.subscriptions.epoch);
    hub.deviceSaid('d1', false, T0);
    expect(hub.registry.get('d1')?.status).toBe('offline');
  });
});
