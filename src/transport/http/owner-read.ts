import type { OwnerAnswer } from '../../cluster/owner-api/index.js';
import { route, type Route } from './router.js';
import { respondLater, sendDeviceNotFound } from './respond.js';

/** The 503 of a cluster whose owning instance did not answer. */
export const OWNER_UNAVAILABLE = ['503 Service Unavailable', { detail: 'the instance holding this device did not answer; retry', error: { code: 'owner_unavailable', message: 'retry' } }] as const;

export interface OwnerReadRoute {
  readonly path: string;
  readonly summary: string;
  /** Whether the id may name a device this instance can ask about (404 at once when not). */
  readonly known: (id: string) => boolean;
  /** The device's owner's answer (null: it holds no such device, 404; `ok: false`: it did not answer, 503). */
  readonly read: (id: string) => Promise<OwnerAnswer<unknown>>;
}

/** A per-device GET answered by the device's owner (`/devices/{device_id}/…`, `/status/{device_id}`). */
export function ownerReadRoute(spec: OwnerReadRoute): Route {
  return route({
    method: 'GET',
    path: spec.path,
    summary: spec.summary,
    action: 'device.read',
    device: 'path',
    ok: '200',
    handle(res, r) {
      const id = r.params[0]!;
      if (!spec.known(id)) return sendDeviceNotFound(res, id);
      respondLater(res, async () => {
        const answer = await spec.read(id);
        if (!answer.ok) return [...OWNER_UNAVAILABLE];
        return answer.value === null ? ['404 Not Found', { detail: `Device ${id} not found` }] : ['200 OK', answer.value];
      }, r.aborted);
    },
  });
}
