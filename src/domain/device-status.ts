export type DeviceStatus = 'online' | 'offline';

/** Why a device changed status; `reconcile` marks changes found after the hub (or Redis) was away. */
export type TransitionReason = 'telemetry' | 'heartbeat' | 'timeout' | 'last_will' | 'reconcile';

export interface StatusChange {
  readonly deviceId: string;
  readonly status: DeviceStatus;
  readonly previous: DeviceStatus | null;
  readonly reason: TransitionReason;
  /** Last time the device was heard from, epoch ms. */
  readonly lastSeen: number | null;
  /** When the transition happened, epoch ms. */
  readonly at: number;
}
