import { isDeviceId } from '../../domain/device-id.js';
import type { DeviceRegistry } from '../../hub/device-registry.js';
import type { Principal } from '../../security/api-keys.js';
import type { DeviceState } from '../../domain/device-state.js';

/** Fleet counts by status: of the whole registry, or of the devices a limited key may read. */
export interface FleetTotals {
  readonly total: number;
  readonly online: number;
  readonly offline: number;
  readonly unknown: number;
}

export interface DevicePage {
  readonly ids: string[];
  /** Opaque: pass it back as `cursor` for the next page; null after the last. */
  readonly nextCursor: string | null;
  readonly totals: FleetTotals;
}

/**
 * Cursors are the last device id of a page (ids are listed in sorted order), base64url-encoded so
 * clients treat them as opaque. The same cursor works on every instance and after a restart; a
 * device present during the whole walk is listed exactly once.
 */
export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

/** The id a cursor stands for, or null when it is not one of ours. */
export function decodeCursor(cursor: string): string | null {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  return isDeviceId(id) && encodeCursor(id) === cursor ? id : null;
}

/** The devices a key is limited to, or null when it may read every device. */
function limitedTo(principal: Principal): ReadonlySet<string> | null {
  return principal.kind === 'key' ? principal.key.deviceIds : null;
}

/**
 * One page of known devices after `after` ('' from the first) that the principal may read and
 * `accept` lets through. An unlimited principal walks the registry's sorted index (cost: the page);
 * a device-limited key walks its own list. `accept` filters (status, type) scan at most `maxScan`
 * ids per page, so a page may be short: follow `nextCursor` until it is null.
 */
export function devicePage(
  registry: DeviceRegistry,
  principal: Principal,
  after: string,
  limit: number,
  accept: ((state: DeviceState) => boolean) | null = null,
  maxScan = Number.POSITIVE_INFINITY,
): DevicePage {
  const limited = limitedTo(principal);
  const source: Iterable<string> = limited === null ? registry.idsAfter(after) : [...limited].filter((id) => id > after).sort();
  const ids: string[] = [];
  let scanned = 0;
  let last: string | null = null;
  let more = false;
  for (const id of source) {
    if (ids.length === limit || scanned === maxScan) {
      more = true;
      break;
    }
    scanned++;
    last = id;
    const state = registry.get(id);
    if (state !== undefined && (accept === null || accept(state))) ids.push(id);
  }
  return { ids, nextCursor: more && last !== null ? encodeCursor(last) : null, totals: totalsFor(registry, limited) };
}

function totalsFor(registry: DeviceRegistry, limited: ReadonlySet<string> | null): FleetTotals {
  if (limited === null) return registry.totals();
  let total = 0;
  let online = 0;
  let offline = 0;
  for (const id of limited) {
    const state = registry.get(id);
    if (state === undefined) continue;
    total++;
    if (state.status === 'online') online++;
    else if (state.status === 'offline') offline++;
  }
  return { total, online, offline, unknown: total - online - offline };
}
