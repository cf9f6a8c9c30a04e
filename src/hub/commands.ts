import { randomUUID } from 'node:crypto';
import type { Command, CommandRequest, CommandState } from '../domain/command.js';

const MAX_IDEMPOTENCY_KEYS = 100_000;
/**
 * Finished commands kept in memory after their last change (the oldest leave first): their rows
 * reach the database a batch later, and a read must not show an older state than the frame the
 * client already has (read-your-writes). Far more than the writer holds unwritten in normal running.
 */
const MAX_RECENTLY_FINISHED = 10_000;
const FINAL: ReadonlySet<CommandState> = new Set(['succeeded', 'failed', 'timed_out', 'expired']);

/** What the command service needs around it: the broker, the device's status, and the hub's push and storage. */
export interface CommandPorts {
  publish(deviceId: string, payload: string): void;
  isOnline(deviceId: string): boolean;
  changed(command: Command): void;
  /** A timer's work threw: reported at its boundary (the other commands' timers go on). */
  fault(error: unknown): void;
}

/**
 * Commands to devices (seed 001): queued → sent → received → succeeded | failed | timed_out | expired.
 * Sent over MQTT QoS 1 when the device is online (or as soon as it comes online, until the command
 * expires); resent with exponential backoff when no acknowledgement comes within `timeout_s`, up to
 * `max_attempts`; then timed out. One timer per command in flight.
 */
export class CommandService {
  private readonly commands = new Map<string, Command>();
  private readonly finished = new Map<string, Command>();
  private readonly byIdempotency = new Map<string, Command>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly ports: CommandPorts,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates a command, or returns the one already made with this idempotency key. */
  submit(deviceId: string, request: CommandRequest, idempotencyKey: string | null): { command: Command; created: boolean } {
    if (idempotencyKey !== null) {
      const existing = this.byIdempotency.get(`${deviceId}\u0000${idempotencyKey}`);
      if (existing) return { command: existing, created: false };
    }
    const at = this.now();
    const command: Command = {
      id: randomUUID(),
      deviceId,
      command: request.command,
      params: request.params,
      state: 'queued',
      attempts: 0,
      maxAttempts: request.maxAttempts,
      timeoutS: request.timeoutS,
      idempotencyKey,
      result: null,
      createdAt: at,
      updatedAt: at,
      expiresAt: at + request.expiresInS * 1000,
    };
    this.track(command);
    this.ports.changed(command);
    if (this.ports.isOnline(deviceId)) this.send(command);
    else this.arm(command, command.expiresAt - at);
    return { command, created: true };
  }

  /** Commands restored from storage at start (not final ones). */
  restore(command: Command): void {
    this.track(command);
    const left = command.expiresAt - this.now();
    if (left <= 0) return this.finish(command, 'expired', null);
    command.state = 'queued';
    this.arm(command, left);
  }

  /** The device came online: send what waited for it. */
  deviceOnline(deviceId: string): void {
    for (const command of this.commands.values()) {
      if (command.deviceId === deviceId && command.state === 'queued') this.send(command);
    }
  }

  /** `devices/{id}/commands/ack`: {command_id, status: received|succeeded|failed, result}. */
  acknowledge(deviceId: string, commandId: string, status: 'received' | 'succeeded' | 'failed', result: unknown): boolean {
    const command = this.commands.get(commandId);
    if (command === undefined || command.deviceId !== deviceId || FINAL.has(command.state)) return false;
    if (status === 'received') {
      if (command.state === 'received') return true;
      command.state = 'received';
      command.updatedAt = this.now();
      this.ports.changed(command);
      // Now wait for the outcome, without resending.
      this.arm(command, command.timeoutS * 1000);
      return true;
    }
    this.finish(command, status, result ?? null);
    return true;
  }

  /** The device's commands as this service holds them now (in flight, and recently finished). */
  held(deviceId: string): Command[] {
    const out: Command[] = [];
    for (const command of this.commands.values()) if (command.deviceId === deviceId) out.push(command);
    for (const command of this.finished.values()) if (command.deviceId === deviceId) out.push(command);
    return out;
  }

  stop(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private track(command: Command): void {
    this.commands.set(command.id, command);
    if (command.idempotencyKey === null) return;
    // Bounded: the oldest keys go first (the database's unique index still refuses a duplicate row).
    if (this.byIdempotency.size >= MAX_IDEMPOTENCY_KEYS) this.byIdempotency.delete(this.byIdempotency.keys().next().value!);
    this.byIdempotency.set(`${command.deviceId}\u0000${command.idempotencyKey}`, command);
  }

  private send(command: Command): void {
    if (this.now() >= command.expiresAt) return this.finish(command, 'expired', null);
    command.attempts++;
    command.state = 'sent';
    command.updatedAt = this.now();
    // Armed first: if the publish throws (the broker client refused it), the command still times
    // out or is resent, rather than staying `sent` with no timer.
    this.arm(command, command.timeoutS * 1000);
    this.ports.publish(
      command.deviceId,
      JSON.stringify({ command_id: command.id, command: command.command, params: command.params, attempt: command.attempts }),
    );
    this.ports.changed(command);
  }

  private arm(command: Command, ms: number): void {
    const previous = this.timers.get(command.id);
    if (previous) clearTimeout(previous);
    const timer = setTimeout(() => this.guarded(() => this.onTimer(command)), Math.max(0, ms));
    timer.unref();
    this.timers.set(command.id, timer);
  }

  private onTimer(command: Command): void {
    this.timers.delete(command.id);
    if (FINAL.has(command.state)) return;
    if (command.state === 'queued') return this.finish(command, 'expired', null);
    if (command.state === 'received' || command.attempts >= command.maxAttempts) return this.finish(command, 'timed_out', null);
    // No acknowledgement: resend after an exponential backoff (1 s, 2 s, 4 s …), if still online.
    const backoff = 1000 * 2 ** (command.attempts - 1);
    const timer = setTimeout(() => this.guarded(() => this.resend(command)), backoff);
    timer.unref();
    this.timers.set(command.id, timer);
  }

  private resend(command: Command): void {
    this.timers.delete(command.id);
    if (FINAL.has(command.state)) return;
    if (this.ports.isOnline(command.deviceId)) this.send(command);
    else {
      command.state = 'queued';
      command.updatedAt = this.now();
      this.ports.changed(command);
      this.arm(command, command.expiresAt - this.now());
    }
  }

  private guarded(work: () => void): void {
    try {
      work();
    } catch (error) {
      this.ports.fault(error);
    }
  }

  private finish(command: Command, state: CommandState, result: unknown): void {
    const timer = this.timers.get(command.id);
    if (timer) clearTimeout(timer);
    this.timers.delete(command.id);
    command.state = state;
    command.result = result;
    command.updatedAt = this.now();
    this.commands.delete(command.id);
    if (this.finished.size >= MAX_RECENTLY_FINISHED) this.finished.delete(this.finished.keys().next().value!);
    this.finished.set(command.id, command);
    this.ports.changed(command);
  }
}
