import type { MqttClient } from 'mqtt';

/**
 * A small, varied fleet for the browser tests and the screenshots, sent as devices send it: over
 * MQTT (telemetry, status) plus device settings over REST. `featured` gets an hour of readings
 * with timestamps in the past, so its charts have a shape.
 */
export interface SeedOptions {
  readonly client: MqttClient;
  readonly prefix: string;
  readonly httpBase: string;
  readonly devices?: number;
  readonly featured?: string;
}

const TYPES = ['sensor', 'gateway', 'meter', 'camera'];
const NAMES = ['Boiler room', 'North gate', 'Cold store', 'Roof east', 'Dock 3', 'Lab bench', 'Pump house', 'Lobby'];

export async function seedFleet({ client, prefix, httpBase, devices = 36, featured = 'pump-07' }: SeedOptions): Promise<string[]> {
  const ids = [featured, ...Array.from({ length: devices - 1 }, (_, i) => `${TYPES[i % TYPES.length]}-${String(i + 1).padStart(2, '0')}`)];
  const publish = (id: string, kind: string, body: unknown) => client.publishAsync(`${prefix}/${id}/${kind}`, typeof body === 'string' ? body : JSON.stringify(body), { qos: 1 });
  for (const [i, id] of ids.entries()) {
    await fetch(`${httpBase}/devices/${id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: id === featured ? 'pump' : id.split('-')[0], name: i % 3 === 0 ? NAMES[i % NAMES.length] : null }),
    });
  }
  const now = Date.now();
  for (let k = 60; k >= 1; k--) {
    const at = now - k * 60_000;
    await publish(featured, 'telemetry', {
      timestamp: new Date(at).toISOString(),
      battery_level: Math.round(92 - (60 - k) * 0.4),
      rssi: Math.round(-62 + 6 * Math.sin(k / 5)),
      response_time_ms: Math.round(180 + 90 * Math.abs(Math.sin(k / 7)) + (k % 13 === 0 ? 700 : 0)),
      error_rate: k % 17 === 0 ? 0.06 : 0.01,
      metrics: { temperature: Math.round((21 + 3 * Math.sin(k / 9)) * 10) / 10, pressure: Math.round((2.1 + 0.2 * Math.cos(k / 6)) * 100) / 100 },
    });
  }
  for (const [i, id] of ids.entries()) {
    const low = i % 11 === 5;
    await publish(id, 'telemetry', {
      battery_level: id === featured ? 67 : low ? 12 : 35 + ((i * 37) % 65),
      rssi: -48 - ((i * 13) % 50),
      response_time_ms: 120 + ((i * 53) % 400) + (i % 9 === 4 ? 1500 : 0),
      error_rate: i % 13 === 7 ? 0.25 : 0.01 * (i % 4),
      ...(id === featured ? { metrics: { temperature: 22.4, pressure: 2.2 } } : {}),
    });
  }
  // Some devices drop off: status messages take them offline at once.
  for (const [i, id] of ids.entries()) if (i % 7 === 3) await publish(id, 'status', 'offline');
  return ids;
}
