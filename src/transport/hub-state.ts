import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { availabilityPayload, type Publish } from './mqtt-availability.js';

const OFFLINE_PUBLISH_TIMEOUT_MS = 2000;

/**
 * The hub's own state, retained on HUB_STATE_TOPIC: `online` once connected (every reconnection),
 * `offline` as its Last Will (the broker publishes it when the hub dies or loses its connection) and
 * on a graceful stop. Lets MQTT tools tell "device offline" from "monitor down".
 */
export class HubState {
  constructor(
    readonly topic: string,
    private readonly format: 'text' | 'json',
    private readonly publish: Publish,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** The MQTT Last Will that says the hub is gone: given to the connection before this exists. */
  static will(topic: string, format: 'text' | 'json'): { topic: string; payload: string } {
    return { topic, payload: availabilityPayload(format, false) };
  }

  connected(): void {
    this.send(true).catch(() => undefined);
  }

  /** Before the connection ends: `offline`, waited for (bounded) so it reaches the broker. */
  async stop(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.send(false).catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, OFFLINE_PUBLISH_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  private async send(online: boolean): Promise<void> {
    try {
      await this.publish(this.topic, availabilityPayload(this.format, online), true);
      this.metrics.mqttPublished.inc({ kind: 'hub_state', outcome: 'sent' });
    } catch (error) {
      this.metrics.mqttPublished.inc({ kind: 'hub_state', outcome: 'failed' });
      this.log.warn({ err: (error as Error).message, topic: this.topic }, 'hub state not published');
      throw error;
    }
  }
}
