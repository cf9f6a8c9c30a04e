import type { EventSink } from '../src/hub/hub.js';

/** For benchmarks of the hub alone: storage is measured by its own scenario. */
export const discardingSink: EventSink = {
  enqueueTelemetry: () => undefined,
  enqueueStatusChange: () => undefined,
  enqueueHealthScore: () => undefined,
  enqueueAlert: () => undefined,
  enqueueCommand: () => undefined,
};
