import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Command, CommandRequest } from '../../src/domain/command.js';
import { CommandService } from '../../src/hub/commands.js';

// The command service on fake timers with fake ports: a broker that records what it publishes, a
// presence that says who is online, and a sink that keeps each change as it was at that moment.
// The states and timings are those of docs/api.md ("Commands to devices").

const request = (overrides: Partial<CommandRequest> = {}): CommandRequest => ({ command: 'restart', params: { delay_s: 5 }, timeoutS: 10, maxAttempts: 3, expiresInS: 3600, ...overrides });

function harness() {
  const online = new Set<string>();
  const published: { deviceId: string; body: { command_id: string; command: string; params: unknown; attempt: number } }[] = [];
  const changes: { id: string; state: Command['state']; attempts: number; result: unknown; at: number }[] = [];
  const faults: unknown[] = [];
  const ports = {
    publish(deviceId: string, payload: string) {
      published.push({ deviceId, body: JSON.parse(payload) });
    },
    isOnline: (deviceId: string) => online.has(deviceId),
    changed: (c: Command) => void changes.push({ id: c.id, state: c.state, attempts: c.attempts, result: c.result, at: c.updatedAt }),
    fault: (error: unknown) => void faults.push(error),
  };
  const service = new CommandService(ports, () => Date.now());
  const statesOf = (id: string) => changes.filter((c) => c.id === id).map((c) => c.state);
  return { service, ports, online, published, changes, faults, statesOf };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(Date.parse('2026-12-01T00:00:00Z'));
});
afterEach(() => void vi.useRealTimers());

describe('CommandService: submit', () => {
  it('publishes to an online device at once: queued, then sent with attempt 1', () => {
    const { service, online, published, statesOf } = harness();
    online.add('d1');
    const { command, created } = service.submit('d1', request(), null);
    expect(created).toBe(true);
    expect(command).toMatchObject({ deviceId: 'd1', state: 'sent', attempts: 1, expiresAt: Date.now() + 3_600_000 });
    expect(published).toEqual([{ deviceId: 'd1', body: { command_id: command.id, command: 'restart', params: { delay_s: 5 }, attempt: 1 } }]);
    expect(statesOf(command.id)).toEqual(['queued', 'sent']);
  });

  it('an idempotency key answers the command made with it, per device; without a key every submit is new', () => {
    const { service, online, published } = harness();
    online.add('d1');
    const first = service.submit('d1', request(), 'restart-42');
    const again = service.submit('d1', request({ command: 'other' }), 'restart-42');
    expect(again).toEqual({ command: first.command, created: false });
    expect(published).toHaveLength(1);
    expect(service.submit('d2', request(), 'restart-42').created).toBe(true);
    const a = service.submit('d1', request(), null);
    const b = service.submit('d1', request(), null);
    expect(a.command.id).not.toBe(b.command.id);
    // A finished command still answers its key.
    service.acknowledge('d1', first.command.id, 'succeeded', null);
    expect(service.submit('d1', request(), 'restart-42')).toEqual({ command: first.command, created: false });
  });
});

describe('CommandService: offline devices and expiry', () => {
  it('queues while the device is offline and sends when it comes online', () => {
    const { service, online, published, statesOf } = harness();
    const { command } = service.submit('d1', request(), null);
    expect(command.state).toBe('queued');
    vi.advanceTimersByTime(60_000);
    expect(published).toEqual([]);
    online.add('d1');
    service.deviceOnline('d2');
    expect(published).toEqual([]);
    service.deviceOnline('d1');
    expect(published.map((p) => p.body.attempt)).toEqual([1]);
    expect(statesOf(command.id)).toEqual(['queued', 'sent']);
  });

  it('expires a queued command when its device does not come online in time', () => {
    const { service, published, statesOf } = harness();
    const { command } = service.submit('d1', request({ expiresInS: 60 }), null);
    vi.advanceTimersByTime(59_999);
    expect(command.state).toBe('queued');
    vi.advanceTimersByTime(1);
    expect(command.state).toBe('expired');
    expect(statesOf(command.id)).toEqual(['queued', 'expired']);
    service.deviceOnline('d1');
    expect(published).toEqual([]);
    expect(service.acknowledge('d1', command.id, 'succeeded', null)).toBe(false);
  });

  it('a retry due after the command expired expires it instead of sending', () => {
    const { service, online, published } = harness();
    online.add('d1');
    const { command } = service.submit('d1', request({ timeoutS: 10, expiresInS: 10.5 }), null);
    vi.advanceTimersByTime(11_000); // timed out at 10 s, the 1 s backoff ends past the expiry
    expect(command.state).toBe('expired');
    expect(published).toHaveLength(1);
  });
});

describe('CommandService: acknowledgements', () => {
  it('received, then the outcome: succeeded with its result; nothing is resent while waiting', () => {
    const { service, online, published, statesOf } = harness();
    online.add('d1');
    const { command } = service.submit('d1', request({ timeoutS: 10 }), null);
    vi.advanceTimersByTime(5000);
    expect(service.acknowledge('d1', command.id, 'received', null)).toBe(true);
    expect(service.acknowledge('d1', command.id, 'received', null)).toBe(true); // a repeat changes nothing
    vi.advanceTimersByTime(9999); // past the first send's timeout, inside the one received restarted
    expect(published).toHaveLength(1);
    expect(service.acknowledge('d1', command.id, 'succeeded', { uptime_s: 3 })).toBe(true);
    expect(command).toMatchObject({ state: 'succeeded', result: { uptime_s: 3 } });
    expect(statesOf(command.id)).toEqual(['queued', 'sent', 'received', 'succeeded']);
  });

  it('failed carries the result; no outcome within timeout_s of received is timed_out', () => {
    const { service, online } = harness();
    online.add('d1');
    const failed = service.submit('d1', request(), null).command;
    service.acknowledge('d1', failed.id, 'failed', { reason: 'busy' });
    expect(failed).toMatchObject({ state: 'failed', result: { reason: 'busy' } });
    const silent = service.submit('d1', request({ timeoutS: 10 }), null).command;
    service.acknowledge('d1', silent.id, 'received', null);
    vi.advanceTimersByTime(10_000);
    expect(silent).toMatchObject({ state: 'timed_out', attempts: 1 });
  });

  it('refuses an acknowledgement for another device, an unknown command, or a finished one', () => {
    const { service, online, changes } = harness();
    online.add('d1');
    const { command } = service.submit('d1', request(), null);
    expect(service.acknowledge('d2', command.id, 'succeeded', null)).toBe(false);
    expect(service.acknowledge('d1', 'no-such-command', 'succeeded', null)).toBe(false);
    expect(service.acknowledge('d1', command.id, 'succeeded', null)).toBe(true);
    const count = changes.length;
    expect(service.acknowledge('d1', command.id, 'failed', null)).toBe(false);
    expect(service.acknowledge('d1', command.id, 'received', null)).toBe(false);
    expect(command.state).toBe('succeeded');
    expect(changes).toHaveLength(count);
  });
});

describe('CommandService: retries and timeout', () => {
  it('resends after timeout_s with 1 s, 2 s … backoff up to max_attempts, then times out', () => {
    const { service, online, published, statesOf } = harness();
    online.add('d1');
    const started = Date.now();
    const { command } = service.submit('d1', request({ timeoutS: 10, maxAttempts: 3 }), null);
    const sentAt: number[] = [];
    const attempts = () => published.map((p) => p.body.attempt);
    for (let t = 0; t < 40_000; t += 500) {
      const before = published.length;
      vi.advanceTimersByTime(500);
      if (published.length > before) sentAt.push(Date.now() - started);
    }
    expect(attempts()).toEqual([1, 2, 3]);
    expect(sentAt).toEqual([11_000, 23_000]); // 10 s + 1 s; then 11 + 10 + 2 s
    expect(command).toMatchObject({ state: 'timed_out', attempts: 3, updatedAt: started + 33_000 });
    expect(statesOf(command.id)).toEqual(['queued', 'sent', 'sent', 'sent', 'timed_out']);
  });

  it('a retry due while the device is offline queues the command again until it returns', () => {
    const { service, online, published, statesOf } = harness();
    online.add('d1');
    const { command } = service.submit('d1', request({ timeoutS: 10 }), null);
    online.delete('d1');
    vi.advanceTimersByTime(11_000);
    expect(command).toMatchObject({ state: 'queued', attempts: 1 });
    vi.advanceTimersByTime(600_000);
    expect(command.state).toBe('queued');
    online.add('d1');
    service.deviceOnline('d1');
    expect(published.map((p) => p.body.attempt)).toEqual([1, 2]);
    expect(statesOf(command.id)).toEqual(['queued', 'sent', 'queued', 'sent']);
  });

  it('a timer whose work throws is reported as a fault; the other commands go on', () => {
    const { service, ports, online, published, faults } = harness();
    online.add('a');
    online.add('b');
    service.submit('a', request({ timeoutS: 10 }), null);
    const b = service.submit('b', request({ timeoutS: 20 }), null).command;
    const publish = ports.publish;
    ports.publish = (deviceId, payload) => {
      if (deviceId === 'a') throw new Error('broker refused');
      publish(deviceId, payload);
    };
    vi.advanceTimersByTime(21_000);
    expect(faults).toEqual([new Error('broker refused')]);
    expect(b.attempts).toBe(2);
    expect(published.filter((p) => p.deviceId === 'b').map((p) => p.body.attempt)).toEqual([1, 2]);
  });

  it('a resend whose publish throws still ends: the command is resent again, then times out', () => {
    const { service, ports, online, published, faults, statesOf } = harness();
    online.add('d1');
    const { command } = service.submit('d1', request({ timeoutS: 10, maxAttempts: 3 }), null);
    const publish = ports.publish;
    let refusals = 0;
    ports.publish = (deviceId, payload) => {
      if (refusals++ === 0) throw new Error('broker refused');
      publish(deviceId, payload);
    };
    vi.advanceTimersByTime(3_600_000);
    expect(faults).toEqual([new Error('broker refused')]);
    expect(published.map((p) => p.body.attempt)).toEqual([1, 3]);
    expect(command.state).toBe('timed_out');
    expect(statesOf(command.id).at(-1)).toBe('timed_out');
  });

  it('stop clears every timer', () => {
    const { service, online, published } = harness();
    online.add('d1');
    const { command } = service.submit('d1', request({ timeoutS: 10 }), null);
    service.stop();
    vi.advanceTimersByTime(3_600_000);
    expect(published).toHaveLength(1);
    expect(command.state).toBe('sent');
  });
});

describe('CommandService: restore and reads', () => {
  const stored = (overrides: Partial<Command>): Command => ({
    id: 'c1',
    deviceId: 'd1',
    command: 'restart',
    params: {},
    state: 'sent',
    attempts: 1,
    maxAttempts: 3,
    timeoutS: 10,
    idempotencyKey: 'k1',
    result: null,
    createdAt: Date.now() - 60_000,
    updatedAt: Date.now() - 60_000,
    expiresAt: Date.now() + 60_000,
    ...overrides,
  });

  it('a restored pending command waits queued for its device and keeps its attempts and idempotency key', () => {
    const { service, online, published } = harness();
    const command = stored({});
    service.restore(command);
    expect(command.state).toBe('queued');
    expect(service.submit('d1', request(), 'k1')).toEqual({ command, created: false });
    online.add('d1');
    service.deviceOnline('d1');
    expect(published).toEqual([{ deviceId: 'd1', body: { command_id: 'c1', command: 'restart', params: {}, attempt: 2 } }]);
    expect(service.acknowledge('d1', 'c1', 'succeeded', null)).toBe(true);
  });

  it('a restored command past its expiry is expired at once; one still queued expires on time', () => {
    const { service, statesOf } = harness();
    const late = stored({ id: 'late', expiresAt: Date.now() - 1 });
    service.restore(late);
    expect(late.state).toBe('expired');
    expect(statesOf('late')).toEqual(['expired']);
    const onTime = stored({ id: 'on-time', state: 'queued', attempts: 0, expiresAt: Date.now() + 5000 });
    service.restore(onTime);
    vi.advanceTimersByTime(5000);
    expect(onTime.state).toBe('expired');
  });

  it('held lists the device’s commands in flight and recently finished', () => {
    const { service, online } = harness();
    online.add('d1');
    const done = service.submit('d1', request(), null).command;
    service.acknowledge('d1', done.id, 'succeeded', null);
    const pending = service.submit('d1', request(), null).command;
    service.submit('d2', request(), null);
    expect(service.held('d1').map((c) => `${c.id === done.id ? 'done' : c.id === pending.id ? 'pending' : '?'} ${c.state}`).sort()).toEqual(['done succeeded', 'pending sent']);
  });
});
