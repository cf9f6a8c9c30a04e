import type { Severity } from './alert-rules.js';
import type { HealthScore } from './health-score.js';

export type AlertLifecycle = 'raised' | 'acknowledged' | 'cleared';
/** `updated`: an active alert changed (its severity escalated, or a mass-offline incident grew). */
export type AlertTransition = 'raised' | 'updated' | 'cleared' | 'acknowledged';

export interface Alert {
  readonly id: string;
  readonly deviceId: string;
  readonly type: string;
  severity: Severity;
  state: AlertLifecycle;
  data: Record<string, unknown>;
  readonly raisedAt: number;
  updatedAt: number;
  clearedAt: number | null;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
}

export interface ScoredHealth extends HealthScore {
  readonly at: number;
}
