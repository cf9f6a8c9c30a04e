import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { createMqttConnection, type MqttConnectionOptions, type MqttIngest } from './mqtt-connection.js';
import type { IngestPort, MqttInboundOptions } from './mqtt-inbound.js';

/*
 * The MQTT ingest in two phases (mqtt-connection.ts): `createMqttConnection` before the hub, then
 * `startIngest` with it; the device messages are read in mqtt-inbound.ts, their payloads parsed in
 * mqtt-payloads.ts.
 */
export { createMqttConnection, type MqttConnection, type MqttConnectionOptions, type MqttIngest, type MqttPublisher } from './mqtt-connection.js';
export type { IngestPort, MessageRouter, MqttInboundOptions, StreamControl } from './mqtt-inbound.js';
export { parseCommandAck, parseStatusPayload, type CommandAckResult } from './mqtt-payloads.js';

export interface MqttIngestOptions extends MqttConnectionOptions, MqttInboundOptions {}

/**
 * Both phases at once: the connection, then the ingest into `hub`. Subscribes to
 * `{prefix}/+/telemetry`, `…/heartbeat`, `…/status` and `…/commands/ack` with a persistent session
 * and reconnects with exponential backoff and jitter.
 */
export function startMqttIngest(opts: MqttIngestOptions, hub: IngestPort, log: Logger, metrics: Metrics, faults: Faults): MqttIngest {
  return createMqttConnection(opts, log, metrics).startIngest(hub, opts, faults);
}
