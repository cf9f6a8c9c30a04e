import type { MqttClient } from 'mqtt';
import type { Metrics } from '../metrics.js';
import type { DurabilityMark } from '../storage/writer.js';

/** What the gate needs of the writer. */
export interface DurabilitySource {
  mark(): DurabilityMark;
  isDurable(mark: DurabilityMark): boolean;
  onProgress(listener: () => void): void;
  kick(): void;
}

interface PubackPacket {
  cmd: string;
  messageId?: number;
}

type SendPacket = (packet: PubackPacket, cb?: (error?: Error) => void, ...rest: unknown[]) => void;

/**
 * Acknowledges each QoS 1 message to the broker only once what it produced is stored, so a hub that
 * crashes loses nothing: the broker redelivers every message it has not seen acknowledged.
 *
 * MQTT.js sends PUBACK right after the 'message' handlers return and waits for that send before it
 * reads the next packet; holding the acknowledgement in a handler would serialise everything. So the
 * gate lets MQTT.js go on at once and keeps the PUBACK packet (with the writer's position at that
 * moment) until the writer has stored past it. The broker's window of unacknowledged messages (MQTT
 * 5 Receive Maximum, MQTT_RECEIVE_MAXIMUM) bounds how much is in memory: past it the broker waits,
 * which is the backpressure that keeps the write queue bounded when the database is slow or away.
 * A reconnect drops the held acknowledgements: the persistent session redelivers those messages and
 * the storage keys (device, timestamp) make the second copy a no-op.
 */
export function installAckGate(client: MqttClient, writer: DurabilitySource, metrics: Metrics, window: number): { readonly held: number } {
  const target = client as unknown as { _sendPacket: SendPacket };
  const send = target._sendPacket.bind(client);
  let held: { packet: PubackPacket; mark: DurabilityMark }[] = [];
  let head = 0;

  const release = () => {
    while (head < held.length && writer.isDurable(held[head]!.mark)) send(held[head++]!.packet);
    if (head === held.length) {
      held = [];
      head = 0;
    } else if (head > 1024) {
      held = held.slice(head);
      head = 0;
    }
    metrics.mqttHeldAcks.set(held.length - head);
  };

  target._sendPacket = (packet, cb, ...rest) => {
    if (packet.cmd !== 'puback') return send(packet, cb, ...rest);
    const mark = writer.mark();
    if (head === held.length && writer.isDurable(mark)) return send(packet, cb, ...rest);
    held.push({ packet, mark });
    // Half the window held: write now rather than wait for the flush interval.
    if (held.length - head === Math.ceil(window / 2)) writer.kick();
    // Let MQTT.js read on (asynchronously, as a real send would, so no deep recursion).
    if (cb) queueMicrotask(cb);
  };
  writer.onProgress(release);
  // Read at each scrape: holding an acknowledgement sets no gauge (it is on every QoS 1 message's
  // path), and a gauge set only on release showed the count of the last release, not the current one.
  metrics.beforeCollect(() => metrics.mqttHeldAcks.set(held.length - head));
  client.on('close', () => {
    held = [];
    head = 0;
    metrics.mqttHeldAcks.set(0);
  });
  return {
    get held() {
      return held.length - head;
    },
  };
}
