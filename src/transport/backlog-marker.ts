import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';

/**
 * Tells when the broker has handed over what it queued for the hub's session while the hub was
 * away. MQTT has no end-of-backlog signal, but a broker delivers one session's queue in order: once
 * subscribed, the hub publishes a marker to a topic only hubs read, and everything the broker queued
 * before it has been delivered when the marker comes back. Presence is judged only after that
 * (docs/presence.md), so a device that kept publishing through a restart is not called offline.
 *
 * The topic `{prefix}/$vigil/commands` fits the shipped broker ACL (the hub writes `+/commands` and
 * reads `#`); no device can publish there (`$` is not allowed in device ids) and no device topic
 * the hub handles matches it. The payload is a nonce of this process, so markers of other hubs on
 * the broker, or of this hub's earlier runs still queued in its session, are not taken for its own.
 */
export class BacklogMarker {
  readonly topic: string;
  private readonly nonce = randomBytes(9).toString('base64url');
  private sentAt = 0;
  private resolveRead!: (ms: number) => void;
  /** Resolves with the milliseconds from publishing the marker to its return. */
  readonly read = new Promise<number>((resolve) => {
    this.resolveRead = resolve;
  });

  constructor(topicPrefix: string) {
    this.topic = `${topicPrefix}/$vigil/commands`;
  }

  /** After the device topics are subscribed on the first connection: subscribe to the marker and send it. */
  send(client: MqttClient, onError: (error: Error) => void, onSent: () => void = () => undefined): void {
    client.subscribe(this.topic, { qos: 1 }, (error) => {
      if (error) {
        onSent();
        return onError(error);
      }
      this.sentAt = performance.now();
      client.publish(this.topic, this.nonce, { qos: 1 }, (failed) => {
        onSent();
        if (failed) onError(failed);
      });
    });
  }

  /** True for a marker (this hub's or another's): not a device message. */
  take(topic: string, payload: Buffer): boolean {
    if (topic !== this.topic) return false;
    if (this.sentAt > 0 && payload.toString() === this.nonce) this.resolveRead(performance.now() - this.sentAt);
    return true;
  }
}
