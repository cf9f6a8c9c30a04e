import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBroker {
  /** mqtt://host:port the ingest client (and devices) connect to. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export class BrokerPortInUseError extends Error {
  override readonly name = 'BrokerPortInUseError';
}

/**
 * An in-process MQTT broker (aedes) for a hub started without MQTT_URL. Single-instance only:
 * it keeps sessions in memory and does not support shared subscriptions.
 */
export async function startEmbeddedBroker(host: string, port: number): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer((socket) => aedes.handle(socket));
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
