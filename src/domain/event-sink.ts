import type { Alert, AlertTransition, ScoredHealth } from './alert.js';
import type { Command } from './command.js';
import type { StatusChange } from './device-status.js';
import type { Telemetry } from './telemetry.js';

/** Where the hub hands what must outlive it; implemented by the batched storage writer. */
export interface EventSink {
  enqueueTelemetry(t: Telemetry): void;
  enqueueStatusChange(c: StatusChange): void;
  enqueueHealthScore(deviceId: string, health: ScoredHealth): void;
  /**
   * The alert's state after a transition (a copy: the live object keeps changing); `transition`
   * says what happened (notifications announce it).
   */
  enqueueAlert(alert: Alert, transition?: AlertTransition): void;
  enqueueCommand(command: Command): void;
}
