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
 * The gate also bounds what it holds itself (a broker may overrun its window): with `holdLimit`
 * acknowledgements held, MQTT.js is not let on to the next packet until one is released.
 * A reconnect drops the held acknowledgements: the persistent session redelivers those messages and
 * the storage keys (device, timestamp) make the second copy a no-op.
 */
export function installAckGate(client: MqttClient, writer: DurabilitySource, metrics: Metrics, window: number, holdLimit = window): { readonly held: number } {
  const target = client as unknown as { _sendPacket: SendPacket };
  const send = target._sendPacket.bind(client);
  let held: { packet: PubackPacket; mark: DurabilityMark }[] = [];
  let head = 0;
  /** MQTT.js's go-on for the packet that filled the window: it reads nothing more until called. */
  let paused: (() => void) | null = null;

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
    if (paused !== null && held.length - head < holdLimit) {
      const goOn = paused;
      paused = null;
      queueMicrotask(goOn);
    }
  };

  target._sendPacket = (packet, cb, ...rest) => {
    if (packet.cmd !== 'puback') return send(packet, cb, ...rest);
    const mark = writer.mark();
    if (head === held.length && writer.isDurable(mark)) return send(packet, cb, ...rest);
    held.push({ packet, mark });
    const holding = held.length - head;
    // Half the window held: write now rather than wait for the flush interval.
    if (holding === Math.ceil(window / 2)) writer.kick();
    if (holding >= holdLimit) {
      // The hub's own bound, whatever the broker does: MQTT.js handles one packet at a time and reads
      // on only when told, so until an acknowledgement leaves nothing more is read (TCP pushes back
      // on the broker). Mosquitto 2.0.11 was seen sending 349,000 messages with 324,000 of them
      // unacknowledged, past a Receive Maximum of 1,000, while a million devices came online (#21):
      // the write queue overflowed and QoS 1 readings were dropped. The limit is the hub's memory
      // bound (half of WRITER_MAX_QUEUE), not the window itself: stopping at every 1,000 held cut
      // flat-out QoS 1 ingest from ~51k to ~31k msg/s (four alternating runs), for a broker that
      // keeps its window anyway.
      if (cb) paused = cb;
      metrics.mqttWindowFull.inc();
      return;
    }
    // Let MQTT.js read on (asynchronously, as a real send would, so no deep recursion).
    if (cb) queueMicrotask(cb);
  };
  writer.onProgress(release);
  // Read at each scrape: holding an acknowledgement sets no gauge (it is on every QoS 1 message's
  // path), and a gauge set only on release showed the count of the last release, not the current one.
  metrics.beforeCollect(() => metrics.mqttHeldAcks.set(held.length - head));
  client.on('close', () => {
    // The connection's packets die with it (the broker redelivers them to the next one).
    paused = null;
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
