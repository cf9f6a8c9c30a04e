import type { StatusChange } from '../domain/device-status.js';
import type { Metrics } from '../metrics.js';
import { alertEvent, deviceEvent, type EventContext } from './cloudevents.js';
import type { OutboxRow } from '../storage/outbox-repository.js';
import type { Sink } from './sink.js';
import type { Alert, AlertTransition } from '../domain/alert.js';
import type { CloudEvent } from '../domain/cloud-event.js';

const NONE: readonly OutboxRow[] = [];

/**
 * Decides, when the writer takes an alert transition or status change, which outbox rows announce
 * it: one per sink whose filters accept the event. Past NOTIFY_OUTBOX_MAX_ROWS pending (as last read
 * by the delivery loop) new events are dropped and counted rather than growing the table without
 * bound while every receiver is away.
 */
export class NotificationPlanner {
  /** Set by the delivery loop from the outbox depth it reads every poll. */
  full = false;
  /** The hub's registry, once it exists (the writer, and so this, is created first). */
  deviceTypeOf: (deviceId: string) => string | null = () => null;

  constructor(
    readonly sinks: readonly Sink[],
    private readonly context: Omit<EventContext, 'deviceTypeOf'>,
    /** ALERT_WEBHOOK_DEVICE_STATUS: online/offline transitions become events too. */
    readonly deviceEvents: boolean,
    private readonly metrics: Metrics,
  ) {}

  forAlert(alert: Alert, transition: AlertTransition): readonly OutboxRow[] {
    return this.rowsFor(alertEvent(alert, transition, this.eventContext()));
  }

  forStatusChange(change: StatusChange): readonly OutboxRow[] {
    return this.deviceEvents ? this.rowsFor(deviceEvent(change, this.eventContext())) : NONE;
  }

  private eventContext(): EventContext {
    return { ...this.context, deviceTypeOf: this.deviceTypeOf };
  }

  private rowsFor(event: CloudEvent): readonly OutboxRow[] {
    let rows: OutboxRow[] | null = null;
    for (const sink of this.sinks) {
      if (!sink.accepts(event)) {
        this.metrics.notifications.inc({ sink: sink.name, outcome: 'filtered' });
        continue;
      }
      if (this.full) {
        this.metrics.notifications.inc({ sink: sink.name, outcome: 'dropped' });
        continue;
      }
      (rows ??= []).push({ sink: sink.name, event });
    }
    return rows ?? NONE;
  }
}
