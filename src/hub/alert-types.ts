import type { Alert, AlertTransition, ScoredHealth } from '../domain/alert.js';
import type { DeviceState } from '../domain/device-state.js';

/** Where insights go: the hub numbers, pushes and stores them. */
export interface InsightSink {
  healthScore(state: DeviceState, health: ScoredHealth, previous: number | null): void;
  alert(state: DeviceState, alert: Alert, transition: AlertTransition): void;
}
