import { afterEach, describe, expect, it } from 'vitest';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { Faults } from '../../src/errors/boundary.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { createInbound, type IngestPort, type MessageRouter, type MqttInbound, type MqttInboundOptions } from '../../src/transport/mqtt-inbound.js';
import { compileTemplate } from '../../src/transport/topic-templates.js';

const NOW = Date.UTC(2026, 11, 1);
const LIMITS = { maxPayloadBytes: 4096, maxMetricKeys: 16, maxFutureSkewMs: 60_000, maxMetricDepth: 3 };

/** A hub that records what reached it; `refuse` makes it refuse new devices. */
class RecordingPort implements IngestPort {
  readonly calls: string[] = [];
  readonly telemetry: Telemetry[] = [];
  refuse = false;
  ingestTelemetry(t: Telemetry): boolean {
    this.telemetry.push(t);
    this.calls.push(`telemetry ${t.deviceId}`);
    return !this.refuse;
  }
  heartbeat(deviceId: string, at: number): boolean {
    this.calls.push(`heartbeat ${deviceId} ${at}`);
    return !this.refuse;
  }
  deviceSaid(deviceId: string, online: boolean, _at: number, retained = false): boolean {
    this.calls.push(`status ${deviceId} ${online}${retained ? ' retained' : ''}`);
    return !this.refuse;
  }
  availabilityHold(deviceId: string, held: boolean): void {
    this.calls.push(`hold ${deviceId} ${held}`);
  }
  readonly commands = {
    acknowledge: (deviceId: string, commandId: string, status: string): boolean => {
      this.calls.push(`ack ${deviceId} ${commandId} ${status}`);
      return commandId !== 'unknown';
    },
  };
}

async function count(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  await metrics.scrape(); // adds what the ingest counts in plain numbers
  const { values } = await metrics.registry.getSingleMetric(name)!.get();
  return values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))?.value ?? 0;
}

describe('the MQTT inbound side', () => {
  const started: MqttInbound[] = [];
  afterEach(() => {
    for (const inbound of started.splice(0)) inbound.stop();
  });
  const start = (options: Partial<MqttInboundOptions> = {}) => {
    const port = new RecordingPort();
    const metrics = createMetrics();
    const inbound = createInbound('vigil', { limits: LIMITS, maxReadingAgeMs: 86_400_000, ...options }, port, createLogger('silent'), metrics, new Faults(createLogger('silent'), metrics));
    started.push(inbound);
    const handle = (topic: string, payload: string | Buffer, replayed = false, retained = false) => inbound.handle(topic, Buffer.isBuffer(payload) ? payload : Buffer.from(payload), NOW, replayed, retained);
    return { port, metrics, inbound, handle };
  };

  it('subscribes the four device topics and each template’s filter', () => {
    expect(start().inbound.topics).toEqual(['vigil/+/telemetry', 'vigil/+/heartbeat', 'vigil/+/status', 'vigil/+/commands/ack']);
    const templated = start({ inputs: { templates: [compileTemplate('telemetry', 'zigbee2mqtt/{id}')], fieldMap: new Map(), ignoredIds: new Set() } });
    expect(templated.inbound.topics).toContain('zigbee2mqtt/+');
  });

  it("takes a retained reading or heartbeat for old news (counted, not handed on), and passes a retained status word on as such", async () => {
    const templates = [compileTemplate('availability', 'zigbee2mqtt/{id}/availability', true), compileTemplate('telemetry', 'zigbee2mqtt/{id}'), compileTemplate('availability', 'tele/{id}/LWT')];
    const { port, metrics, handle } = start({ inputs: { templates, fieldMap: new Map(), ignoredIds: new Set() } });
    handle('vigil/d1/telemetry', '{"battery_level":80}', false, true);
    handle('vigil/d1/heartbeat', '', false, true);
    handle('zigbee2mqtt/lamp', '{"battery":90}', false, true);
    handle('vigil/d1/status', 'online', false, true);
    handle('tele/plug/LWT', 'Online', false, true);
    expect(port.calls).toEqual(['status d1 true retained', 'status plug true retained']);
    expect(await count(metrics, 'vigil_mqtt_messages_total', { kind: 'telemetry', outcome: 'retained' })).toBe(2);
    expect(await count(metrics, 'vigil_mqtt_messages_total', { kind: 'heartbeat', outcome: 'retained' })).toBe(1);
    // A holding input's word is marked before routing (every instance), then handed on to the owner.
    const routed: string[] = [];
    const router: MessageRouter = { route: (id) => void routed.push(id) === undefined };
    const cluster = start({ inputs: { templates, fieldMap: new Map(), ignoredIds: new Set() }, router });
    cluster.handle('zigbee2mqtt/lamp/availability', '{"state":"online"}', false, true);
    cluster.handle('zigbee2mqtt/lamp/availability', 'offline');
    cluster.handle('tele/plug/LWT', 'Online');
    expect(cluster.port.calls).toEqual(['hold lamp true', 'hold lamp false']);
    expect(routed).toEqual(['lamp', 'lamp', 'plug']);
  });

  it('hands each kind of message to the port', async () => {
    const { port, metrics, handle } = start();
    handle('vigil/d1/telemetry', JSON.stringify({ battery_level: 80, metrics: { t: 21 } }));
    handle('vigil/d1/heartbeat', '');
    handle('vigil/d1/status', 'Offline');
    handle('vigil/d1/commands/ack', JSON.stringify({ command_id: 'c1', status: 'succeeded' }));
    expect(port.calls).toEqual(['telemetry d1', `heartbeat d1 ${NOW}`, 'status d1 false', 'ack d1 c1 succeeded']);
    expect(port.telemetry[0]).toMatchObject({ deviceId: 'd1', batteryLevel: 80, metrics: { t: 21 }, receivedAt: NOW });
    expect(await count(metrics, 'vigil_mqtt_messages_total', { kind: 'telemetry', outcome: 'accepted' })).toBe(1);
    expect(await count(metrics, 'vigil_mqtt_messages_total', { kind: 'command_ack', outcome: 'accepted' })).toBe(1);
  });

  it('counts invalid messages by reason and does not pass them on', async () => {
    const { port, metrics, handle } = start();
    handle('vigil/d1/telemetry', 'not json');
    handle('vigil/bad id/heartbeat', '');
    handle('vigil/d1/status', 'maybe');
    handle('vigil/d1/commands/ack', JSON.stringify({ command_id: 'unknown', status: 'failed' }));
    handle('vigil/d1/telemetry', JSON.stringify({ timestamp: new Date(NOW - 2 * 86_400_000).toISOString() }));
    expect(port.calls).toEqual(['ack d1 unknown failed']);
    expect(await count(metrics, 'vigil_mqtt_messages_total', { kind: 'telemetry', outcome: 'invalid' })).toBe(2);
    expect(await count(metrics, 'vigil_invalid_messages_total', { reason: 'invalid_device_id' })).toBe(1);
    expect(await count(metrics, 'vigil_invalid_messages_total', { reason: 'invalid_status' })).toBe(1);
    expect(await count(metrics, 'vigil_invalid_messages_total', { reason: 'invalid_command_ack' })).toBe(1);
  });

  it('counts what the port refused (a new device over the limits) as refused', async () => {
    const { port, metrics, handle } = start();
    port.refuse = true;
    handle('vigil/d1/telemetry', '{}');
    handle('vigil/d1/heartbeat', '');
    expect(await count(metrics, 'vigil_mqtt_messages_total', { kind: 'telemetry', outcome: 'refused' })).toBe(1);
    expect(await count(metrics, 'vigil_mqtt_messages_total', { kind: 'heartbeat', outcome: 'refused' })).toBe(1);
    expect(await count(metrics, 'vigil_mqtt_messages_total', { kind: 'telemetry', outcome: 'accepted' })).toBe(0);
  });

  it('lets the cluster router take a device message before it is handled, and handles a replayed one it lets through', () => {
    const routed: string[] = [];
    const router: MessageRouter = { route: (deviceId, topic, _payload, _at, replayed) => (routed.push(`${deviceId} ${topic} ${replayed}`), !replayed) };
    const { port, handle } = start({ router });
    handle('vigil/d1/heartbeat', '');
    expect(port.calls).toEqual([]);
    handle('vigil/d1/heartbeat', '', true);
    expect(routed).toEqual(['d1 vigil/d1/heartbeat false', 'd1 vigil/d1/heartbeat true']);
    expect(port.calls).toEqual([`heartbeat d1 ${NOW}`]);
  });

  it('ignores topics outside the prefix and the ids a preset ignores', async () => {
    const { port, metrics, handle } = start({ inputs: { templates: [compileTemplate('availability', 'z2m/{id}/availability')], fieldMap: new Map(), ignoredIds: new Set(['bridge']) } });
    handle('elsewhere/d1/heartbeat', '');
    handle('vigil', '');
    handle('z2m/bridge/availability', 'online');
    handle('z2m/plug/availability', 'online');
    expect(port.calls).toEqual(['status plug true']);
    expect(await count(metrics, 'vigil_mqtt_messages_total', { kind: 'other', outcome: 'ignored' })).toBe(1);
  });

  it('reports a fault inside the port and goes on with the next message', async () => {
    const { port, metrics, handle } = start();
    port.heartbeat = () => {
      throw new Error('boom');
    };
    handle('vigil/d1/heartbeat', '');
    handle('vigil/d1/status', 'online');
    expect(port.calls).toEqual(['status d1 true']);
    expect(await count(metrics, 'vigil_internal_errors_total', { entry: 'mqtt' })).toBe(1);
  });
});
