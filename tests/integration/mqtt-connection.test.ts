import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Faults } from '../../src/errors/boundary.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import type { DurabilityMark } from '../../src/storage/writer.js';
import { createMqttConnection, type MqttConnectionOptions } from '../../src/transport/mqtt-connection.js';
import type { IngestPort, MqttInboundOptions } from '../../src/transport/mqtt-inbound.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';

// The two phases of the hub's MQTT client against the real broker: a connection made before the
// hub, its ingest started once the hub exists.

const durable = { mark: (): DurabilityMark => ({ telemetry: 0, statusChanges: 0 }), isDurable: () => true, onProgress: () => undefined, kick: () => undefined };
const inbound: MqttInboundOptions = { limits: { maxPayloadBytes: 4096, maxMetricKeys: 16, maxFutureSkewMs: 60_000, maxMetricDepth: 3 }, maxReadingAgeMs: 86_400_000 };

function options(prefix: string): MqttConnectionOptions {
  return { url: SERVICES.mqttUrl, topicPrefix: prefix, clientId: `vigil-test-${randomSuffix()}`, qos: 1, clean: true, protocolVersion: 5, receiveMaximum: 100, sessionExpiryS: 0, durability: durable };
}

const seen = () => {
  const heartbeats: string[] = [];
  const port: IngestPort = {
    ingestTelemetry: () => true,
    heartbeat: (deviceId) => (heartbeats.push(deviceId), true),
    deviceSaid: () => true,
    commands: { acknowledge: () => true },
  };
  return { port, heartbeats };
};

describe('the MQTT connection in two phases', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('does not connect before the ingest starts; commands published meanwhile reach the broker once it does', async () => {
    const prefix = `vigil-two-phase-${randomSuffix()}`;
    const metrics = createMetrics();
    const connection = createMqttConnection(options(prefix), createLogger('silent'), metrics);
    const device: MqttClient = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${randomSuffix()}`, clean: true, reconnectPeriod: 0 });
    cleanup.push(() => device.endAsync());
    const commands: string[] = [];
    device.on('message', (topic, payload) => commands.push(`${topic} ${payload.toString()}`));
    await device.subscribeAsync(`${prefix}/d1/commands`, { qos: 1 });

    connection.publishCommand('d1', '{"command_id":"c1"}');
    const ready = vi.fn();
    void connection.ready().then(ready);
    await new Promise((resolve) => setImmediate(resolve));
    expect(connection.connected).toBe(false);
    expect(ready).not.toHaveBeenCalled();

    const { port, heartbeats } = seen();
    const ingest = connection.startIngest(port, inbound, new Faults(createLogger('silent'), metrics));
    cleanup.push(() => ingest.stop());
    await ingest.ready();
    expect(connection.connected).toBe(true);
    expect(ingest.connected).toBe(true);
    await vi.waitFor(() => expect(commands).toEqual([`${prefix}/d1/commands {"command_id":"c1"}`]), { timeout: 5000 });
    // The backlog marker came back, then device messages reach the port.
    expect(await ingest.backlogRead()).toBeGreaterThanOrEqual(0);
    await device.publishAsync(`${prefix}/d2/heartbeat`, '', { qos: 1 });
    await vi.waitFor(() => expect(heartbeats).toEqual(['d2']), { timeout: 5000 });
    expect(() => connection.startIngest(port, inbound, new Faults(createLogger('silent'), metrics))).toThrow(/already started/);
  });

  it('stops at once when the ingest never started', async () => {
    const connection = createMqttConnection(options(`vigil-two-phase-${randomSuffix()}`), createLogger('silent'), createMetrics());
    connection.publishCommand('d1', 'x');
    const published = connection.publish('vigil-two-phase/state', 'online', true);
    await connection.stop();
    await expect(published).rejects.toThrow(/stopped before it started/);
    expect(connection.connected).toBe(false);
    expect(() => connection.startIngest(seen().port, inbound, new Faults(createLogger('silent'), createMetrics()))).toThrow(/stopped/);
  });
});
