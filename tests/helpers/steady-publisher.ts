import { connectAsync, type MqttClient } from 'mqtt';
import { SERVICES } from './services.js';

/**
 * Publishes `total` QoS 1 telemetry messages at `ratePerS`, round-robin over `devices`, each with a
 * distinct device timestamp, and counts what the broker acknowledged.
 */
export async function steadyPublisher(opts: { prefix: string; devices: string[]; total: number; ratePerS: number; url?: string }) {
  const client: MqttClient = await connectAsync(opts.url ?? SERVICES.mqttUrl, { clientId: `pub-${Math.random().toString(36).slice(2)}`, clean: true });
  let accepted = 0;
  const base = Date.now() - 60_000;
  const done = (async () => {
    const started = Date.now();
    for (let i = 0; i < opts.total; i++) {
      const due = started + (i * 1000) / opts.ratePerS;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const device = opts.devices[i % opts.devices.length]!;
      await client.publishAsync(`${opts.prefix}/${device}/telemetry`, JSON.stringify({ timestamp: base + i, battery_level: 50 }), { qos: 1 });
      accepted++;
    }
    await client.endAsync();
  })();
  return {
    done,
    get accepted() {
      return accepted;
    },
  };
}
