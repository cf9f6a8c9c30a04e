import type { Alert, AlertTransition, ScoredHealth } from '../domain/alert.js';
import type { Command } from '../domain/command.js';
import type { DeviceState } from '../domain/device-state.js';
import type { StatusChange } from '../domain/device-status.js';
import type { EventSink } from '../domain/event-sink.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { Fanout } from '../fanout/fanout.js';
import type { Metrics } from '../metrics.js';
import { alertFrame, commandUpdateFrame, deviceUpdateFrame, healthScoreFrame, statusChangeFrame } from './frames.js';

/** Channel names are the uWS topics; `*` carries every device's status, health and alert frames. */
export const ALL_CHANNEL = '*';

/**
 * The one place where an event is numbered on its device's channel (`seq`), written as a frame,
 * handed to the fan-out and queued for storage. Every frame a device's followers get passes here,
 * so the numbering has one owner: a gap in `seq` always means a frame the client missed.
 *
 * A frame is built only when it goes somewhere (`fanout.wants`), but its seq is spent either way,
 * so numbering does not depend on who listens. The telemetry path allocates nothing but its frame.
 */
export class FramePublisher {
  constructor(
    private readonly fanout: Fanout,
    private readonly sink: EventSink,
    private readonly metrics: Metrics,
  ) {}

  /** A reading: `device_update` to the device's followers (only if it has any), the reading stored. */
  deviceUpdate(state: DeviceState, t: Telemetry): void {
    state.seq++;
    const fanout = this.fanout;
    if (fanout.wants(state.id)) fanout.toDevice(state.id, state.seq, deviceUpdateFrame(state, t), 'u');
    this.sink.enqueueTelemetry(t);
  }

  /** A command's new state, stored; pushed on its device's channel unless the device has none (null: registry full). */
  commandUpdate(state: DeviceState | null, command: Command): void {
    this.sink.enqueueCommand({ ...command });
    if (state === null) return;
    state.seq++;
    this.fanout.toDevice(state.id, state.seq, commandUpdateFrame(state.seq, command), `c:${command.id}`);
  }

  healthScore(state: DeviceState, health: ScoredHealth, previous: number | null): void {
    state.seq++;
    // Scores change about once a second per device: for a large fleet nobody watches, building
    // their frames would cost more than scoring them.
    const fanout = this.fanout;
    const toDevice = fanout.wants(state.id);
    const toAll = fanout.wants(ALL_CHANNEL);
    if (toDevice || toAll) {
      const frame = healthScoreFrame(state.id, state.seq, health, previous);
      if (toDevice) fanout.toDevice(state.id, state.seq, frame, 'h');
      if (toAll) fanout.toAll(frame, `h:${state.id}`);
    }
    this.sink.enqueueHealthScore(state.id, health);
  }

  /** A device's alert changed: on its channel and `*`, stored (a copy: the live alert keeps changing), counted. */
  alert(state: DeviceState, alert: Alert, transition: AlertTransition): void {
    state.seq++;
    const frame = alertFrame(state.seq, alert, transition, alert.updatedAt);
    this.fanout.toDevice(state.id, state.seq, frame, `a:${alert.id}`);
    this.fanout.toAll(frame, `a:${alert.id}`);
    this.sink.enqueueAlert({ ...alert }, transition);
    this.metrics.alerts.inc({ transition, severity: alert.severity });
  }

  /** A fleet-wide alert (a mass-offline incident): on `*` only, with no device seq (0), stored, counted. */
  fleetAlert(alert: Alert, transition: AlertTransition, at: number): void {
    this.fanout.toAll(alertFrame(0, alert, transition, at), `a:${alert.id}`);
    this.sink.enqueueAlert(alert, transition);
    this.metrics.alerts.inc({ transition, severity: alert.severity });
  }

  /** A status change on the device's channel and `*` (by the device's owner, which numbers its frames). */
  statusChange(state: DeviceState, change: StatusChange): void {
    state.seq++;
    const frame = statusChangeFrame(change, state.seq, state.flapping);
    this.fanout.toDevice(state.id, state.seq, frame, 's');
    this.fanout.toAll(frame, `s:${state.id}`);
  }

  /** A status change this instance won the claim for: stored and counted here, once across hubs. */
  storeStatusChange(change: StatusChange): void {
    this.sink.enqueueStatusChange(change);
    this.metrics.presenceTransitions.inc({ status: change.status, reason: change.reason });
  }

  /** Another instance numbered this device further (ownership moved): continue after its seq. */
  fenced(state: DeviceState, storedSeq: number): void {
    if (state.seq < storedSeq) state.seq = storedSeq;
  }
}
