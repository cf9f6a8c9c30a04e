import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startTestHub, wsUrl, type HubMode } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';
import { eventually, letTimePass } from '../helpers/wait.js';

type Device = Awaited<ReturnType<typeof deviceClient>>;

/** Commands end to end: REST in, MQTT to a device that answers (or not), WebSocket updates out. */
export function runCommandsContract(mode: HubMode): void {
  describe(`device commands (${mode})`, () => {
    let hub: RunningHub;
    let device: Device;
    const clients: TestClient[] = [];
    const received: Record<string, { command_id: string; attempt: number }[]> = {};
    const post = (id: string, body: unknown, key?: string) =>
      fetch(httpUrl(hub, `/devices/${id}/commands`), { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) } });
    const follow = async (id: string) => {
      const c = await TestClient.connect(wsUrl(hub));
      clients.push(c);
      await c.request({ type: 'subscribe_device', device_id: id }, 1);
      return c;
    };
    const states = (c: TestClient, commandId: string) => c.ofType('command_update').filter((f) => f.command_id === commandId).map((f) => f.state);
    const ack = (id: string, commandId: string, status: string, result?: unknown) =>
      device.raw(`${id}/commands/ack`, JSON.stringify({ command_id: commandId, status, result }));

    beforeAll(async () => {
      hub = await startTestHub(mode);
      device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
      await device.client.subscribeAsync(`${hub.config.MQTT_TOPIC_PREFIX}/+/commands`, { qos: 1 });
      device.client.on('message', (topic, payload) => {
        const id = topic.split('/').at(-2)!;
        (received[id] ??= []).push(JSON.parse(payload.toString()) as { command_id: string; attempt: number });
      });
    });
    afterAll(async () => {
      for (const c of clients) c.close();
      await device?.client.endAsync();
      await hub?.stop();
    });

    it('sends to an online device and follows its acknowledgements to success', async () => {
      const id = `cmd-${randomSuffix()}`;
      const c = await follow(id);
      await device.telemetry(id, { battery_level: 80 });
      await c.next((f) => f.type === 'status_change');
      const reply = await post(id, { command: 'restart', params: { delay_s: 5 } });
      expect(reply.status).toBe(202);
      const { command_id } = (await reply.json()) as { command_id: string };
      await c.next((f) => f.type === 'command_update' && f.state === 'sent');
      await eventually('the device received the command', () => (received[id]?.length ?? 0) > 0);
      expect(received[id]).toEqual([{ command_id, command: 'restart', params: { delay_s: 5 }, attempt: 1 }]);
      await ack(id, command_id, 'received');
      await ack(id, command_id, 'succeeded', { uptime_s: 0 });
      await c.next((f) => f.type === 'command_update' && f.state === 'succeeded');
      expect(states(c, command_id)).toEqual(['queued', 'sent', 'received', 'succeeded']);
      await eventually('the listed command succeeded', async () => {
        const listed = (await (await fetch(httpUrl(hub, `/devices/${id}/commands`))).json()) as { commands: { command_id: string; state: string; result: unknown }[] };
        expect(listed.commands[0]).toMatchObject({ command_id, state: 'succeeded', result: { uptime_s: 0 } });
        return true;
      });
    });

    it('shows each state to a read made the moment its frame arrives (read-your-writes)', async () => {
      const id = `ryw-${randomSuffix()}`;
      const c = await follow(id);
      await device.telemetry(id, {});
      await c.next((f) => f.type === 'status_change');
      const listed = async (commandId: string) => {
        const body = (await (await fetch(httpUrl(hub, `/devices/${id}/commands`))).json()) as { commands: { command_id: string; state: string }[] };
        return body.commands.find((x) => x.command_id === commandId)?.state;
      };
      const { command_id } = (await (await post(id, { command: 'restart' })).json()) as { command_id: string };
      expect(await listed(command_id)).toBe('sent'); // the device is online: sent before the 202
      await ack(id, command_id, 'received');
      await c.next((f) => f.type === 'command_update' && f.state === 'received');
      expect(await listed(command_id)).toBe('received');
      await ack(id, command_id, 'succeeded', { ok: true });
      await c.next((f) => f.type === 'command_update' && f.state === 'succeeded');
      expect(await listed(command_id)).toBe('succeeded');
    });

    it('resends with backoff when no acknowledgement comes, then times out', async () => {
      const id = `mute-${randomSuffix()}`;
      const c = await follow(id);
      await device.telemetry(id, {});
      await c.next((f) => f.type === 'status_change');
      const { command_id } = (await (await post(id, { command: 'ping', timeout_s: 1, max_attempts: 2 })).json()) as { command_id: string };
      await c.next((f) => f.type === 'command_update' && f.state === 'timed_out', 8000);
      expect(states(c, command_id)).toEqual(['queued', 'sent', 'sent', 'timed_out']);
      expect(received[id]?.map((m) => m.attempt)).toEqual([1, 2]);
    });

    it('keeps a command for an offline device and sends it when the device comes online', async () => {
      const id = `later-${randomSuffix()}`;
      const c = await follow(id);
      const { command_id, state } = (await (await post(id, { command: 'update_firmware' })).json()) as { command_id: string; state: string };
      expect(state).toBe('queued');
      await letTimePass(200, 'nothing may be published to the offline device');
      expect(received[id]).toBeUndefined();
      await device.telemetry(id, {});
      await c.next((f) => f.type === 'command_update' && f.state === 'sent');
      await ack(id, command_id, 'failed', { error: 'disk full' });
      const failed = await c.next((f) => f.type === 'command_update' && f.state === 'failed');
      expect(failed.result).toEqual({ error: 'disk full' });
    });

    it('expires a command whose device never came back', async () => {
      const id = `gone-${randomSuffix()}`;
      const c = await follow(id);
      await post(id, { command: 'restart', expires_in_s: 1 });
      await c.next((f) => f.type === 'command_update' && f.state === 'expired', 4000);
    });

    it('honours Idempotency-Key and validates the request', async () => {
      const id = `idem-${randomSuffix()}`;
      const first = await post(id, { command: 'restart' }, 'req-1');
      const again = await post(id, { command: 'restart' }, 'req-1');
      expect(first.status).toBe(202);
      expect(again.status).toBe(200);
      expect(((await again.json()) as { command_id: string }).command_id).toBe(((await first.json()) as { command_id: string }).command_id);
      expect((await post(id, { command: 'restart', max_attempts: 0 })).status).toBe(422);
      expect((await post(id, { command: 'rm -rf /' })).status).toBe(422);
      expect((await post(id, { command: 'x', extra: true })).status).toBe(422);
    });
  });
}
