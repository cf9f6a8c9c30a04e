/**
 * Topic templates: inputs in a fleet's own topic layout, with one `{id}` level naming the device
 * (`zigbee2mqtt/{id}`, `tele/{id}/SENSOR`), and the presets for Zigbee2MQTT and Tasmota. Matching is
 * two string comparisons per template (the literal text before and after `{id}`), so a fleet on
 * templates costs about what one on `devices/{id}/…` does.
 */

/** What a matched message is: telemetry in the fleet's shape, a heartbeat, or an availability word. */
export type TemplateKind = 'telemetry' | 'heartbeat' | 'availability';

export interface TopicTemplate {
  readonly kind: TemplateKind;
  readonly template: string;
  /** The MQTT subscription filter (`{id}` → `+`). */
  readonly filter: string;
  readonly before: string;
  readonly after: string;
  /**
   * An availability input that holds its devices online (MQTT_AVAILABILITY_HOLD): its `online`
   * lasts until its `offline`, with no offline timeout meanwhile.
   */
  readonly hold: boolean;
}

export interface TemplateMatch {
  readonly kind: TemplateKind;
  readonly deviceId: string;
  readonly hold: boolean;
}

export interface Preset {
  readonly telemetry: readonly string[];
  readonly heartbeat: readonly string[];
  readonly availability: readonly string[];
  /** The availability templates that hold their devices online unless MQTT_AVAILABILITY_HOLD says otherwise. */
  readonly hold: readonly string[];
  readonly fieldMap: readonly string[];
  /** `{id}` values that are the bridge itself, never a device. */
  readonly ignoredIds: readonly string[];
}

/**
 * What each project documents. Zigbee2MQTT: `zigbee2mqtt/<friendly_name>` (JSON state: `battery` %,
 * `linkquality` LQI 0–255 — not dBm, so kept as a metric, not rssi), `…/<friendly_name>/availability`
 * (`online`/`offline`, 2.x: `{"state":"online"}`), and `zigbee2mqtt/bridge/…` (the bridge).
 * Tasmota: `tele/<topic>/SENSOR` (nested sensor objects; `Time` is local time without a zone, so
 * not a timestamp), `tele/<topic>/STATE` (`Wifi.Signal` dBm → rssi; `Wifi.RSSI` is a 0–100 quality),
 * `tele/<topic>/LWT` (`Online`/`Offline`, retained).
 *
 * Holding (docs/presence.md#holding-devices-online): Zigbee2MQTT's availability is its own judgement
 * (it pings active devices and times out passive ones, 25 h by default), and its battery sensors
 * report only on change, so its `online` holds. Tasmota's LWT is only its connection's Last Will,
 * which a broker restart can leave `Online` for a device that never came back, and Tasmota reports
 * every TelePeriod, so the timeout keeps working there: not held by default.
 */
export const PRESETS: Readonly<Record<string, Preset>> = {
  zigbee2mqtt: {
    telemetry: ['zigbee2mqtt/{id}'],
    heartbeat: [],
    availability: ['zigbee2mqtt/{id}/availability'],
    hold: ['zigbee2mqtt/{id}/availability'],
    fieldMap: ['battery=battery_level', 'last_seen='],
    ignoredIds: ['bridge'],
  },
  tasmota: {
    telemetry: ['tele/{id}/SENSOR', 'tele/{id}/STATE'],
    heartbeat: [],
    availability: ['tele/{id}/LWT'],
    hold: [],
    fieldMap: ['Wifi.Signal=rssi', 'Time='],
    ignoredIds: [],
  },
};

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

/** One template: literal levels and exactly one `{id}` level; no `+`, `#` or empty levels. */
export function compileTemplate(kind: TemplateKind, template: string, hold = false): TopicTemplate {
  const levels = template.split('/');
  const at = levels.indexOf('{id}');
  if (at === -1 || levels.lastIndexOf('{id}') !== at) throw new TemplateError(`"${template}" must hold exactly one {id} level`);
  for (const level of levels) {
    if (level === '') throw new TemplateError(`"${template}" has an empty level`);
    if (level !== '{id}' && /[+#{}]/.test(level)) throw new TemplateError(`"${template}": levels other than {id} must be literal (no +, #, braces)`);
  }
  if (template.startsWith('$')) throw new TemplateError(`"${template}": $-topics are the broker's`);
  const before = levels.slice(0, at).map((l) => `${l}/`).join('');
  const after = levels.slice(at + 1).map((l) => `/${l}`).join('');
  if (hold && kind !== 'availability') throw new TemplateError(`"${template}": only availability templates can hold devices online`);
  return { kind, template, filter: `${before}+${after}`, before, after, hold };
}

/** The first template `topic` matches, with its device id (one level, non-empty). */
export function matchTemplate(templates: readonly TopicTemplate[], topic: string): TemplateMatch | null {
  for (let i = 0; i < templates.length; i++) {
    const t = templates[i]!;
    if (topic.length <= t.before.length + t.after.length || !topic.startsWith(t.before) || !topic.endsWith(t.after)) continue;
    const deviceId = topic.slice(t.before.length, topic.length - t.after.length);
    if (deviceId.includes('/')) continue;
    return { kind: t.kind, deviceId, hold: t.hold };
  }
  return null;
}

/**
 * True when some topic could match both patterns; each is levels of literals and wildcards (`+`,
 * `{…}` for one level, a trailing `#` for the rest). Used to refuse a configuration in which the hub
 * would read its own publications back as device input.
 */
export function topicsOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return false;
    if (isOneLevel(p) || isOneLevel(q)) continue;
    if (p !== q) return false;
  }
  return true;
}

const isOneLevel = (level: string) => level === '+' || /^\{[a-z]+\}$/.test(level);
