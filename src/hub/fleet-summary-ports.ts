/** What the fleet summaries need from the outside: a subscriber's connection, and the other instances. */

/** What a summary subscriber's connection needs (the session's socket). */
export interface SummarySocket {
  send(frame: string): void;
  bufferedAmount(): number;
  subscribe(channel: string): void;
  unsubscribe(channel: string): void;
  cork(fn: () => void): void;
}

/**
 * Cluster mode: how an owner hands its changed summaries to the other instances once per interval
 * (src/cluster/summary-peers.ts, over the Redis bus) and hears theirs (its own echo dropped).
 */
export interface SummaryPeers {
  readonly instanceId: string;
  publish(message: string): void;
  onMessage(handler: (message: string) => void): void;
}
