import { parseArgs } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { createFleet, deviceLabels, isFlappingOff, reading, rng, type SimulatedDevice } from './device-model.js';

/**
 * Simulated devices publishing realistic telemetry over MQTT, with shares of misbehaving ones.
 *   npm run simulate -- --devices 1000 --rate 1 --mqtt-url mqtt://127.0.0.1:1883 --duration 600
 * Devices share `--connections` MQTT connections, except Last Will devices, which get their own so
 * the broker can publish their will when they drop. The run stops by itself after --duration seconds.
 * Before sending, each device is given a type (and one in three a name) with PUT /devices/{id} on
 * --hub-url (an admin key in --api-key or VIGIL_API_KEY when the hub needs one; --hub-url '' skips it).
 */
const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '100' },
    rate: { type: 'string', default: '1' },
    'mqtt-url': { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    prefix: { type: 'string', default: 'devices' },
    'id-prefix': { type: 'string', default: 'sim' },
    connections: { type: 'string', default: '20' },
    duration: { type: 'string', default: '3600' },
    qos: { type: 'string', default: '0' },
    seed: { type: 'string', default: '42' },
    'low-battery': { type: 'string', default: '0.05' },
    'error-spikes': { type: 'string', default: '0.05' },
    slow: { type: 'string', default: '0.05' },
    silent: { type: 'string', default: '0.02' },
    'last-will': { type: 'string', default: '0.02' },
    flapping: { type: 'string', default: '0.02' },
    'hub-url': { type: 'string', default: 'http://127.0.0.1:8080' },
    'api-key': { type: 'string', default: process.env.VIGIL_API_KEY ?? '' },
  },
});

const devices = positive('devices', 1, 100_000);
const rate = positive('rate', 0.001, 1000);
const connections = positive('connections', 1, 1000);
const durationMs = positive('duration', 1, 7 * 24 * 3600) * 1000;
const qos = values.qos === '1' ? 1 : 0;
const prefix = values.prefix!;
const random = rng(Number(values.seed));
const fleet = createFleet(
  devices,
  {
    low_battery: share('low-battery'),
    error_spikes: share('error-spikes'),
    slow: share('slow'),
    silent: share('silent'),
    last_will: share('last-will'),
    flapping: share('flapping'),
  },
  random,
  values['id-prefix'],
);

function positive(name: keyof typeof values, min: number, max: number): number {
  const value = Number(values[name]);
  if (!Number.isFinite(value) || value < min || value > max) {
    process.stderr.write(`--${name} must be a number from ${min} to ${max}\n`);
    process.exit(2);
  }
  return value;
}

function share(name: keyof typeof values): number {
  return positive(name, 0, 1);
}

/**
 * Types and names through the REST API (the hub's device settings), a few at a time; a refusal (no
 * admin key, no hub at that URL) is told once and the run goes on with untyped devices.
 */
async function register(hubUrl: string, apiKey: string): Promise<void> {
  let next = 0;
  let done = 0;
  let failure: string | null = null;
  const worker = async () => {
    while (failure === null && next < fleet.length) {
      const index = next++;
      const device = fleet[index]!;
      for (let attempt = 0; ; attempt++) {
        const r = await fetch(`${hubUrl}/devices/${encodeURIComponent(device.id)}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', ...(apiKey ? { 'x-api-key': apiKey } : {}) },
          body: JSON.stringify(deviceLabels(index)),
        }).catch((e: unknown) => ({ ok: false, status: 0, statusText: (e as Error).message, headers: new Headers() }) as const);
        if (r.ok) {
          done++;
          break;
        }
        if (r.status === 429 && attempt < 20) {
          await new Promise((resolve) => setTimeout(resolve, 1000 * Number(r.headers.get('retry-after') ?? 1)));
          continue;
        }
        failure = `PUT /devices/${device.id}: ${r.status} ${r.statusText}`;
        break;
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  process.stdout.write(failure === null ? `typed and named ${done} devices on ${hubUrl}\n` : `devices left untyped (${failure}); pass --hub-url and an admin --api-key\n`);
}

async function main(): Promise<void> {
  const url = values['mqtt-url']!;
  if (values['hub-url']) await register(values['hub-url'].replace(/\/$/, ''), values['api-key']!);
  const shared: MqttClient[] = [];
  for (let i = 0; i < Math.min(connections, devices); i++) {
    shared.push(await connectAsync(url, { clientId: `vigil-sim-${process.pid}-${i}`, clean: true, reconnectPeriod: 1000 }));
  }
  const own = new Map<string, MqttClient>();
  for (const device of fleet.filter((d) => d.behaviour === 'last_will')) {
    own.set(
      device.id,
      await connectAsync(url, {
        clientId: `vigil-sim-${device.id}`,
        clean: true,
        reconnectPeriod: 0,
        will: { topic: `${prefix}/${device.id}/status`, payload: Buffer.from('offline'), qos: 1, retain: false },
      }),
    );
  }
  const clientOf = (device: SimulatedDevice, index: number) => own.get(device.id) ?? shared[index % shared.length]!;

  // Answer commands like a real device: received, then succeeded.
  for (const client of shared) {
    client.on('message', (topic, payload) => {
      const deviceId = topic.slice(prefix.length + 1, topic.lastIndexOf('/commands'));
      let commandId: unknown;
      try {
        commandId = (JSON.parse(payload.toString()) as { command_id?: unknown }).command_id;
      } catch {
        return;
      }
      const ack = (status: string) =>
        client.publish(`${prefix}/${deviceId}/commands/ack`, JSON.stringify({ command_id: commandId, status, result: { ok: status === 'succeeded' } }), { qos: 1 });
      ack('received');
      setTimeout(() => ack('succeeded'), 200);
    });
  }
  await shared[0]!.subscribeAsync(`${prefix}/+/commands`, { qos: 1 });

  const started = Date.now();
  const tickMs = 100;
  const perTick = (devices * rate * tickMs) / 1000;
  let carry = 0;
  let cursor = 0;
  let sent = 0;
  const stats = setInterval(() => {
    process.stdout.write(`${new Date().toISOString()} sent=${sent} rate=${Math.round(sent / ((Date.now() - started) / 1000))}/s\n`);
  }, 10_000);

  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = Date.now() - started;
      if (elapsed >= durationMs) {
        clearInterval(timer);
        resolve();
        return;
      }
      carry += perTick;
      const count = Math.floor(carry);
      carry -= count;
      for (let n = 0; n < count; n++) {
        const index = cursor;
        const device = fleet[index]!;
        cursor = (cursor + 1) % fleet.length;
        if (device.stopped || isFlappingOff(device, elapsed)) continue;
        if ((device.behaviour === 'silent' || device.behaviour === 'last_will') && elapsed > device.stopsAt) {
          device.stopped = true;
          // A Last Will device drops its connection without DISCONNECT, so the broker sends its will.
          own.get(device.id)?.stream.destroy();
          continue;
        }
        clientOf(device, index).publish(`${prefix}/${device.id}/telemetry`, JSON.stringify(reading(device, elapsed, random)), { qos });
        sent++;
      }
    }, tickMs);
    const stop = () => {
      clearInterval(timer);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

  clearInterval(stats);
  await Promise.all([...shared, ...own.values()].map((c) => c.endAsync().catch(() => undefined)));
  process.stdout.write(`done: ${sent} messages from ${devices} devices in ${Math.round((Date.now() - started) / 1000)} s\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`simulator: ${(error as Error).message}\n`);
  process.exit(1);
});
