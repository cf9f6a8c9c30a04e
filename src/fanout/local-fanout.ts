import type { Fanout, LocalDelivery } from './fanout.js';

/** Single-instance fan-out: every frame goes straight to this process's clients. */
export function createLocalFanout(): Fanout {
  let local: LocalDelivery | null = null;
  return {
    kind: 'local',
    async start(delivery) {
      local = delivery;
    },
    toDevice(deviceId, frame, key) {
      local?.toDevice(deviceId, frame, key);
    },
    toAll(frame, key) {
      local?.toAll(frame, key);
    },
    async stop() {
      local = null;
    },
  };
}
