import type { ApiKey, Principal, Scope } from './api-keys.js';

/**
 * What an action needs of a key besides its scope:
 * - `device`: one device, named by the request (a key limited to devices must list it);
 * - `filtered`: an aggregate over devices: allowed, and the answer holds only devices the key may
 *   see (each is asked about with `authorize(principal, action, id)`);
 * - `fleet`: fleet-wide data that cannot be cut per device (Prometheus counters, the `*` feed):
 *   only for keys not limited to devices;
 * - `none`: not about devices.
 */
export type DeviceRule = 'device' | 'filtered' | 'fleet' | 'none';

interface ActionRule {
  /** Null: no key needed (the probes, the documents). */
  readonly scope: Scope | null;
  readonly devices: DeviceRule;
}

/** Every action a request or WebSocket message can take; docs/security.md holds the same table. */
export const ACTIONS = {
  public: { scope: null, devices: 'none' },
  'device.read': { scope: 'read', devices: 'device' },
  'fleet.read': { scope: 'read', devices: 'filtered' },
  'fleet.feed': { scope: 'read', devices: 'fleet' },
  'metrics.read': { scope: 'read', devices: 'fleet' },
  'token.issue': { scope: 'read', devices: 'none' },
  'device.ingest': { scope: 'ingest', devices: 'device' },
  'device.command': { scope: 'command', devices: 'device' },
  'alert.ack': { scope: 'command', devices: 'device' },
  'device.admin': { scope: 'admin', devices: 'device' },
  'keys.admin': { scope: 'admin', devices: 'filtered' },
  'notifications.admin': { scope: 'admin', devices: 'fleet' },
  /** The alert rule set spans every device: not for keys limited to devices. */
  'rules.read': { scope: 'admin', devices: 'fleet' },
  'rules.write': { scope: 'admin', devices: 'fleet' },
} as const satisfies Record<string, ActionRule>;

export type Action = keyof typeof ACTIONS;

export type Decision = { readonly ok: true } | { readonly ok: false; readonly code: 'forbidden'; readonly message: string };

const ALLOWED: Decision = { ok: true };

/** True for an unlimited key: admin implies every scope. */
const hasScope = (key: ApiKey, scope: Scope) => key.scopes.has('admin') || key.scopes.has(scope);

/**
 * The one authorization decision of the hub, for every REST route, WebSocket message and
 * cross-instance operation. `deviceId` null asks about the action itself (before the device is
 * known, or for an aggregate); every device the action then touches is asked about by its id.
 * Anonymous principals exist only on a hub that serves without keys (docs/security.md).
 */
export function authorize(principal: Principal, action: Action, deviceId: string | null): Decision {
  if (principal.kind === 'anonymous') return ALLOWED;
  const rule: ActionRule = ACTIONS[action];
  const key = principal.key;
  if (rule.scope !== null && !hasScope(key, rule.scope)) return { ok: false, code: 'forbidden', message: `this key lacks the "${rule.scope}" scope` };
  if (key.deviceIds === null) return ALLOWED;
  if (rule.devices === 'fleet') return { ok: false, code: 'forbidden', message: 'this needs a key that is not limited to devices' };
  if (deviceId !== null && rule.devices !== 'none' && !key.deviceIds.has(deviceId)) {
    return { ok: false, code: 'forbidden', message: 'this key may not use this device' };
  }
  return ALLOWED;
}

/** Shorthand for filters: may the principal see this device in an answer of `action`. */
export const permits = (principal: Principal, action: Action, deviceId: string): boolean => authorize(principal, action, deviceId).ok;

/** The devices a principal is limited to (null: all). */
export const deviceLimit = (principal: Principal): ReadonlySet<string> | null => (principal.kind === 'key' ? principal.key.deviceIds : null);

/**
 * Whether the principal may create (or revoke, or see) a key with these rights: never broader than
 * itself, so scopes ⊆ its own (admin covers all) and devices ⊆ its own (a limited key cannot make
 * an unlimited one).
 */
export function covers(principal: Principal, scopes: Iterable<Scope>, deviceIds: ReadonlySet<string> | readonly string[] | null): boolean {
  if (principal.kind === 'anonymous') return true;
  const key = principal.key;
  for (const scope of scopes) if (!hasScope(key, scope)) return false;
  if (key.deviceIds === null) return true;
  if (deviceIds === null) return false;
  for (const id of deviceIds) if (!key.deviceIds.has(id)) return false;
  return true;
}
