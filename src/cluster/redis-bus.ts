import { Redis } from 'ioredis';
import type { Entry, Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import { redactUrl } from '../redact-url.js';

type Handler = (suffix: string, message: Buffer) => void;

/**
 * The two Redis connections instances talk over: one for commands and PUBLISH, one that only
 * subscribes (a subscribed connection can run nothing else). Channels are routed to handlers by
 * prefix; ioredis subscribes again by itself after a reconnect.
 */
export class RedisBus {
  readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly routes: { prefix: string; entry: Entry; handler: Handler }[] = [];

  constructor(
    url: string,
    log: Logger,
    private readonly faults: Faults,
  ) {
    const options = { maxRetriesPerRequest: 2, lazyConnect: true } as const;
    this.commands = new Redis(url, options);
    this.subscriber = new Redis(url, options);
    for (const [name, connection] of [['commands', this.commands], ['subscriber', this.subscriber]] as const) {
      connection.on('error', (error: Error) => log.debug({ err: error.message, url: redactUrl(url), connection: name }, 'cluster redis error'));
    }
    this.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const name = channel.toString();
      for (const route of this.routes) {
        if (!name.startsWith(route.prefix)) continue;
        // The boundary of every message on the bus: a handler's fault must not reach ioredis's parser.
        try {
          route.handler(name.slice(route.prefix.length), message);
        } catch (error) {
          faults.report(route.entry, error, { channel: name.slice(0, 200) });
        }
        return;
      }
    });
  }

  get ready(): boolean {
    return this.commands.status === 'ready' && this.subscriber.status === 'ready';
  }

  async connect(): Promise<void> {
    await Promise.all([this.commands.connect(), this.subscriber.connect()]);
  }

  /** Messages on channels starting with `prefix` go to `handler`; its faults are reported under `entry`. */
  route(prefix: string, entry: Entry, handler: Handler): void {
    this.routes.push({ prefix, entry, handler });
  }

  async subscribe(channel: string): Promise<void> {
    await this.subscriber.subscribe(channel);
  }

  /**
   * Resolves once every message Redis published to this instance before it read this call has
   * arrived: the subscriber connection answers a PING after the messages queued ahead of it.
   */
  async barrier(): Promise<void> {
    await this.subscriber.ping();
  }

  unsubscribe(channel: string): void {
    this.subscriber.unsubscribe(channel).catch(this.faults.catcher('cluster', { op: 'unsubscribe' }));
  }

  /** Resolves with the number of instances that received it. */
  publish(channel: string, message: string | Buffer): Promise<number> {
    return this.commands.publish(channel, message);
  }

  async close(): Promise<void> {
    await Promise.all([this.commands.quit().catch(() => undefined), this.subscriber.quit().catch(() => undefined)]);
  }
}
