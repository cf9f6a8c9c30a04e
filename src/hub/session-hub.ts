import type { FleetRecovery } from '../fanout/fanout.js';
import type { SummarySocket } from './fleet-summary.js';
import type { Prepared, ResumeFrom } from './hub.js';

/** The `fleet_summary` feed as sessions use it (FleetSummaries, docs/websocket-protocol.md). */
export interface SummaryFeed {
  join(socket: SummarySocket, lagging: boolean): void;
  leave(socket: SummarySocket, open: boolean): void;
  /** The socket lags: stop its frames; `resend` brings it a full table once it caught up. */
  pause(socket: SummarySocket): void;
  resend(socket: SummarySocket): void;
}

/**
 * What WebSocket sessions and their subscription handlers need of the hub, and nothing more: the
 * Hub satisfies it as it is, and a unit test can hand a session a fake.
 */
export interface SessionHub {
  /** The frame numbering's epoch (a resume from another epoch starts afresh). */
  readonly epoch: string;
  /** Takes a channel (a device id or `*`) on for this instance; resolves once other instances' frames reach it. */
  follow(channel: string): Promise<void>;
  unfollow(channel: string): void;
  /** A device's first frames for a new subscriber: its snapshot, or the frames it missed (`resume`). */
  prepare(deviceId: string, resume: ResumeFrom | null, followed: Promise<void>): Prepared | Promise<Prepared>;
  /** The `*` feed's head and, resuming from `since`, the frames after it. */
  prepareFleet(since: number | null, followed: Promise<void>): FleetRecovery | Promise<FleetRecovery>;
  /** Acknowledges an alert wherever it is held once `may` allows its device; null: no such active alert. */
  acknowledgeAlertAnywhere(alertId: string, by: string, may: (deviceId: string) => boolean): Promise<object | null | 'forbidden'>;
  readonly summaries: SummaryFeed;
}
