import type { EventSink } from '../src/domain/event-sink.js';

/** For benchmarks of the hub alone: storage is measured by its own scenario. */
export const discardingSink: EventSink = {
  enqueueTelemetry: () => undefined,
  enqueueStatusChange: () => undefined,
  enqueueHealthScore: () => undefined,
  enqueueAlert: () => undefined,
  enqueueCommand: () => undefined,
};
