import { describe, expect, it } from 'vitest';
import type { Alert, ScoredHealth } from '../../src/domain/alert.js';
import type { Command } from '../../src/domain/command.js';
import { blankState } from '../../src/domain/device-state.js';
import type { StatusChange } from '../../src/domain/device-status.js';
import type { Fanout } from '../../src/fanout/fanout.js';
import { ALL_CHANNEL, FramePublisher } from '../../src/hub/frame-publisher.js';
import { counted, quietBoundary, recordingLocalFanout, recordingSink, telemetry } from '../helpers/hub-parts.js';

/** The frame publisher alone: numbering, frames built only when wanted, one storage row per event. */

interface Pushed {
  readonly to: string;
  readonly seq: number | null;
  readonly frame: Record<string, unknown>;
  readonly key: string;
}

/** A fan-out that wants only the channels given and records what it is handed. */
function wantingFanout(wanted: ReadonlySet<string>): { fanout: Fanout; pushed: Pushed[] } {
  const pushed: Pushed[] = [];
  const { fanout: real } = recordingLocalFanout();
  const fanout: Fanout = {
    ...real,
    wants: (channel) => wanted.has(channel),
    toDevice: (to, seq, frame, key) => void pushed.push({ to, seq, frame: JSON.parse(frame) as Record<string, unknown>, key }),
    toAll: (frame, key) => void pushed.push({ to: ALL_CHANNEL, seq: null, frame: JSON.parse(frame) as Record<string, unknown>, key }),
  };
  return { fanout, pushed };
}

function publisherWith(wanted: string[]) {
  const { fanout, pushed } = wantingFanout(new Set(wanted));
  const sink = recordingSink();
  const { metrics } = quietBoundary();
  return { publisher: new FramePublisher(fanout, sink, metrics), pushed, sink, metrics };
}

const health: ScoredHealth = { score: 71.5, components: {}, at: 1_700_000_000_000 };

function alert(deviceId: string): Alert {
  return { id: 'a1', deviceId, type: 'low_battery', severity: 'warning', state: 'raised', data: { battery_level: 5 }, raisedAt: 1000, updatedAt: 2000, clearedAt: null, acknowledgedAt: null, acknowledgedBy: null };
}

describe('FramePublisher', () => {
  it('numbers every reading of a device by one and stores each, building a frame only for a followed device', () => {
    const { publisher, pushed, sink } = publisherWith(['d1']);
    const followed = blankState('d1');
    const unfollowed = blankState('d2');
    for (let i = 0; i < 3; i++) {
      publisher.deviceUpdate(followed, telemetry('d1', 1000 + i));
      publisher.deviceUpdate(unfollowed, telemetry('d2', 1000 + i));
    }
    expect(followed.seq).toBe(3);
    expect(unfollowed.seq).toBe(3); // spent although nobody listens: numbering does not depend on followers
    expect(pushed.map((p) => [p.to, p.seq, p.frame.type, p.frame.seq, p.key])).toEqual([
      ['d1', 1, 'device_update', 1, 'u'],
      ['d1', 2, 'device_update', 2, 'u'],
      ['d1', 3, 'device_update', 3, 'u'],
    ]);
    expect(sink.rows.map((r) => r.kind)).toEqual(['telemetry', 'telemetry', 'telemetry', 'telemetry', 'telemetry', 'telemetry']);
  });

  it('builds a health frame for the device channel, `*`, both or neither, as wanted, and stores the score each time', () => {
    const wantedBy = [[], ['d1'], [ALL_CHANNEL], ['d1', ALL_CHANNEL]];
    const seen = wantedBy.map((wanted) => {
      const { publisher, pushed, sink } = publisherWith(wanted);
      const state = blankState('d1');
      publisher.healthScore(state, health, 60);
      expect(state.seq).toBe(1);
      expect(sink.rows).toEqual([{ kind: 'health', deviceId: 'd1', health }]);
      return pushed.map((p) => `${p.to}:${p.key}:${String(p.frame.score)}:${String(p.frame.previous)}`);
    });
    expect(seen).toEqual([[], ['d1:h:71.5:60'], ['*:h:d1:71.5:60'], ['d1:h:71.5:60', '*:h:d1:71.5:60']]);
  });

  it('sends an alert on its device channel and `*`, stores a copy (the live alert keeps changing) and counts it', async () => {
    const { publisher, pushed, sink, metrics } = publisherWith([]);
    const state = blankState('d1');
    const live = alert('d1');
    publisher.alert(state, live, 'raised');
    live.state = 'cleared';
    expect(pushed.map((p) => [p.to, p.frame.type, p.frame.seq, p.key])).toEqual([
      ['d1', 'anomaly_alert', 1, 'a:a1'],
      ['*', 'anomaly_alert', 1, 'a:a1'],
    ]);
    const row = sink.rows[0]!;
    expect(row.kind === 'alert' && row.alert.state).toBe('raised');
    expect(row.kind === 'alert' && row.transition).toBe('raised');
    expect(await counted(metrics.alerts, { transition: 'raised', severity: 'warning' })).toBe(1);
  });

  it('stores a command of a device without a channel (registry full) and numbers nothing; pushes it otherwise', () => {
    const { publisher, pushed, sink } = publisherWith([]);
    const command: Command = { id: 'c1', deviceId: 'd1', command: 'reboot', params: {}, state: 'queued', attempts: 0, maxAttempts: 3, timeoutS: 30, idempotencyKey: null, result: null, createdAt: 1000, updatedAt: 1000, expiresAt: 61_000 };
    publisher.commandUpdate(null, command);
    command.state = 'sent';
    expect(pushed).toEqual([]);
    const state = blankState('d1');
    publisher.commandUpdate(state, command);
    expect(state.seq).toBe(1);
    expect(pushed.map((p) => [p.to, p.frame.type, p.frame.seq, p.key])).toEqual([['d1', 'command_update', 1, 'c:c1']]);
    expect(sink.rows.map((r) => r.kind)).toEqual(['command', 'command']);
    expect(sink.rows.map((r) => r.kind === 'command' && r.command.state)).toEqual(['queued', 'sent']); // copies, as they were
  });

  it('publishes a status change (numbered) apart from storing it (only the hub that won the claim stores)', async () => {
    const { publisher, pushed, sink, metrics } = publisherWith([]);
    const state = blankState('d1');
    const change: StatusChange = { deviceId: 'd1', status: 'offline', previous: 'online', reason: 'timeout', lastSeen: 1000, at: 61_000 };
    publisher.statusChange(state, change);
    expect(pushed.map((p) => [p.to, p.frame.type, p.frame.seq, p.frame.status, p.key])).toEqual([
      ['d1', 'status_change', 1, 'offline', 's'],
      ['*', 'status_change', 1, 'offline', 's:d1'],
    ]);
    expect(sink.rows).toEqual([]);
    publisher.storeStatusChange(change);
    expect(sink.rows).toEqual([{ kind: 'status', change }]);
    expect(await counted(metrics.presenceTransitions, { status: 'offline', reason: 'timeout' })).toBe(1);
  });

  it('sends a fleet alert on `*` only, with no device seq', () => {
    const { publisher, pushed, sink } = publisherWith([]);
    publisher.fleetAlert(alert(ALL_CHANNEL), 'raised', 5000);
    expect(pushed.map((p) => [p.to, p.frame.seq, p.frame.device_id])).toEqual([['*', 0, '*']]);
    expect(sink.rows.map((r) => r.kind)).toEqual(['alert']);
  });

  it('continues after a seq another instance reached, never going back', () => {
    const { publisher } = publisherWith([]);
    const state = blankState('d1');
    publisher.fenced(state, 40);
    expect(state.seq).toBe(40);
    publisher.fenced(state, 10);
    expect(state.seq).toBe(40);
  });

  it('with the real local fan-out: a follower gets the frames in seq order, a device nobody follows gets none', async () => {
    const { fanout, delivered } = recordingLocalFanout();
    const publisher = new FramePublisher(fanout, recordingSink(), quietBoundary().metrics);
    await fanout.follow('d1');
    const followed = blankState('d1');
    const other = blankState('d2');
    publisher.deviceUpdate(followed, telemetry('d1', 1000));
    publisher.deviceUpdate(other, telemetry('d2', 1000));
    publisher.healthScore(followed, health, null);
    expect(delivered.map((d) => [d.channel, d.frame.type, d.frame.seq])).toEqual([
      ['d1', 'device_update', 1],
      ['d1', 'health_score', 2],
    ]);
  });
});
