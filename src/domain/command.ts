export const COMMAND_STATES = ['queued', 'sent', 'received', 'succeeded', 'failed', 'timed_out', 'expired'] as const;
export type CommandState = (typeof COMMAND_STATES)[number];

export interface Command {
  readonly id: string;
  readonly deviceId: string;
  readonly command: string;
  readonly params: Record<string, unknown>;
  state: CommandState;
  attempts: number;
  readonly maxAttempts: number;
  readonly timeoutS: number;
  readonly idempotencyKey: string | null;
  result: unknown;
  readonly createdAt: number;
  updatedAt: number;
  readonly expiresAt: number;
}

export interface CommandRequest {
  readonly command: string;
  readonly params: Record<string, unknown>;
  readonly timeoutS: number;
  readonly maxAttempts: number;
  readonly expiresInS: number;
}
