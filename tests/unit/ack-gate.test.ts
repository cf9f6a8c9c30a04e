import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import type { DurabilityMark } from '../../src/storage/writer.js';
import { installAckGate, type DurabilitySource } from '../../src/transport/ack-gate.js';

interface Packet {
  cmd: string;
  messageId?: number;
}

/** The part of MQTT.js the gate wraps: `_sendPacket`, and 'close'. */
class FakeClient extends EventEmitter {
  readonly wire: Packet[] = [];
  _sendPacket(packet: Packet, cb?: (error?: Error) => void): void {
    this.wire.push(packet);
    cb?.();
  }
  /** PUBACKs that reached the broker, by message id. */
  acked(): number[] {
    return this.wire.filter((p) => p.cmd === 'puback').map((p) => p.messageId!);
  }
}

/** A writer whose queue position moves when the test says: `taken` rows queued, `stored` written. */
class FakeWriter implements DurabilitySource {
  taken = 0;
  stored = 0;
  kicks = 0;
  private readonly listeners: (() => void)[] = [];
  mark(): DurabilityMark {
    return { telemetry: this.taken, statusChanges: 0 };
  }
  isDurable(mark: DurabilityMark): boolean {
    return mark.telemetry <= this.stored;
  }
  onProgress(listener: () => void): void {
    this.listeners.push(listener);
  }
  kick(): void {
    this.kicks++;
  }
  /** The writer stored up to `rows` and says so. */
  store(rows: number): void {
    this.stored = rows;
    for (const listener of this.listeners) listener();
  }
}

function gate(window = 8) {
  const client = new FakeClient();
  const writer = new FakeWriter();
  const metrics = createMetrics();
  const held = installAckGate(client as unknown as MqttClient, writer, metrics, window);
  const send = (packet: Packet, cb?: () => void) => (client as unknown as { _sendPacket: (p: Packet, cb?: () => void) => void })._sendPacket(packet, cb);
  /** A QoS 1 message whose handling queued `rows` rows, then its PUBACK from MQTT.js. */
  const message = (id: number, rows = 1, cb?: () => void) => {
    writer.taken += rows;
    send({ cmd: 'puback', messageId: id }, cb);
  };
  return { client, writer, metrics, held, send, message };
}

describe('the QoS 1 ack gate', () => {
  it('sends a PUBACK at once when nothing the message produced waits for storage', () => {
    const { client, held, message } = gate();
    message(1, 0);
    expect(client.acked()).toEqual([1]);
    expect(held.held).toBe(0);
  });

  it('passes every other packet straight through', () => {
    const { client, writer, send } = gate();
    writer.taken = 5;
    send({ cmd: 'publish', messageId: 9 });
    send({ cmd: 'pingreq' });
    expect(client.wire.map((p) => p.cmd)).toEqual(['publish', 'pingreq']);
  });

  it('holds PUBACKs until the writer stored past each, then releases them in order', async () => {
    const { client, writer, held, message, metrics } = gate();
    message(1);
    message(2);
    message(3);
    expect(client.acked()).toEqual([]);
    expect(held.held).toBe(3);
    writer.store(2);
    expect(client.acked()).toEqual([1, 2]);
    expect(held.held).toBe(1);
    expect((await metrics.mqttHeldAcks.get()).values[0]?.value).toBe(1);
    writer.store(3);
    expect(client.acked()).toEqual([1, 2, 3]);
    expect(held.held).toBe(0);
  });

  it('keeps order: a message that needs no storage waits behind held ones', () => {
    const { client, writer, message } = gate();
    message(1);
    message(2, 0); // durable by itself, but the broker must see 1 before 2
    expect(client.acked()).toEqual([]);
    writer.store(1);
    expect(client.acked()).toEqual([1, 2]);
  });

  it('lets MQTT.js read on at once (its callback, asynchronously) while the PUBACK is held', async () => {
    const { client, message } = gate();
    let called = false;
    message(1, 1, () => (called = true));
    expect(called).toBe(false);
    await Promise.resolve();
    expect(called).toBe(true);
    expect(client.acked()).toEqual([]);
  });

  it('asks the writer to write now once half the window is held', () => {
    const { writer, message } = gate(8);
    for (let id = 1; id <= 3; id++) message(id);
    expect(writer.kicks).toBe(0);
    message(4);
    expect(writer.kicks).toBe(1);
    message(5);
    expect(writer.kicks).toBe(1);
  });

  it('with holdLimit acknowledgements held, MQTT.js reads nothing more until one is released, whatever the broker sends (#21)', async () => {
    const { client, writer, held, message, metrics } = gate(4);
    const goneOn: number[] = [];
    for (let id = 1; id <= 4; id++) message(id, 1, () => goneOn.push(id));
    await Promise.resolve();
    expect(goneOn).toEqual([1, 2, 3]); // the fourth filled the window: MQTT.js waits
    expect(held.held).toBe(4);
    expect((await metrics.mqttWindowFull.get()).values[0]?.value).toBe(1);
    writer.store(1); // one released: below the window, MQTT.js goes on
    await Promise.resolve();
    expect(client.acked()).toEqual([1]);
    expect(goneOn).toEqual([1, 2, 3, 4]);
    writer.store(4);
    expect(client.acked()).toEqual([1, 2, 3, 4]);
  });

  it('a paused read does not outlive its connection', async () => {
    const { client, writer, message } = gate(2);
    const goneOn: number[] = [];
    message(1, 1, () => goneOn.push(1));
    message(2, 1, () => goneOn.push(2));
    client.emit('close');
    writer.store(2);
    await Promise.resolve();
    expect(goneOn).toEqual([1]);
  });

  it('drops what it holds when the connection closes: the broker redelivers those messages', () => {
    const { client, writer, held, message } = gate();
    message(1);
    message(2);
    client.emit('close');
    expect(held.held).toBe(0);
    writer.store(2);
    expect(client.acked()).toEqual([]);
    message(3, 0);
    expect(client.acked()).toEqual([3]);
  });

  it('releases a long queue without holding on to what was sent', () => {
    const { client, writer, held, message } = gate(100_000);
    for (let id = 1; id <= 5000; id++) message(id);
    writer.store(3000);
    expect(client.acked()).toHaveLength(3000);
    expect(held.held).toBe(2000);
    writer.store(5000);
    expect(client.acked()).toHaveLength(5000);
    expect(held.held).toBe(0);
  });
});
