import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type Client } from 'aedes';

export interface EmbeddedBroker {
  /** mqtt://host:port the ingest client (and devices) connect to. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export class BrokerPortInUseError extends Error {
  override readonly name = 'BrokerPortInUseError';
}

/** What the size check needs of mqtt-packet's parser (9.0.x, pinned with aedes 1.2.0). */
interface PacketParser {
  packet: { length: number };
  _parseLength(): boolean;
  _emitError(error: Error): void;
}

/**
 * Refuses a packet whose remaining length (MQTT fixed header) is over `maxBytes` as soon as that
 * length is read, before its body is buffered: aedes 1.2 has no such limit and mqtt-packet would
 * otherwise collect a 100 MiB publish in memory. The parser's error closes the connection, as
 * for any malformed packet (counted by `onRefused`).
 */
function limitPacketSize(client: Client, maxBytes: number, onRefused: () => void): void {
  const parser = (client as unknown as { _parser: PacketParser })._parser;
  const parseLength = parser._parseLength.bind(parser);
  parser._parseLength = () => {
    const complete = parseLength();
    if (!complete || parser.packet.length <= maxBytes) return complete;
    onRefused();
    parser._emitError(new Error(`packet of ${parser.packet.length} bytes is over the broker's limit of ${maxBytes}`));
    return false;
  };
}

/**
 * An in-process MQTT broker (aedes) for a hub started without MQTT_URL. Single-instance only:
 * it keeps sessions in memory and does not support shared subscriptions. Packets over
 * `maxPacketBytes` close the connection that sent them.
 */
export async function startEmbeddedBroker(host: string, port: number, maxPacketBytes: number, onRefused: () => void): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer((socket) => limitPacketSize(aedes.handle(socket), maxPacketBytes, onRefused));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new BrokerPortInUseError(
        `MQTT_PORT ${port} on ${host} is already in use, probably by another MQTT broker. ` +
          `Either use that broker (MQTT_URL=mqtt://${host}:${port}) or give the embedded one a free port (MQTT_PORT=1884).`,
      );
    }
    throw error;
  }
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://${host}:${bound}`,
    port: bound,
    async stop() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
