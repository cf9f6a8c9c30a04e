/**
 * Readings as fleets send them: numbers are kept, booleans become 1/0, nested objects are flattened
 * to dotted keys (`AM2301.Temperature`) down to a bounded depth, arrays of numbers (Tasmota's
 * multi-channel `ENERGY.Voltage: [230, 231]`) to indexed keys (`ENERGY.Voltage.0`, `…1`) within the
 * same bounds, and everything else is skipped —
 * counted per reason — without dropping the message. Only the slow path (a value that is not a plain
 * finite number) comes here: the Vigil payload's numeric metrics never do.
 */

/** Why one reading was left out of a stored message; counted in `vigil_readings_skipped_total`. */
/**
 * `array`: an array holding anything but numbers and booleans; `out_of_range`: a fleet's field
 * mapped onto one of Vigil's (`battery` → battery_level) whose value that field does not accept.
 */
export const SKIP_REASONS = ['string', 'null', 'array', 'not_finite', 'too_deep', 'bad_key', 'out_of_range'] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];
export type OnSkip = (reason: SkipReason) => void;

/** Longest stored metric name (dotted path included). */
export const MAX_METRIC_KEY_LENGTH = 64;
export const DEFAULT_METRIC_DEPTH = 4;

/**
 * A fresh object to hold readings. Its prototype is one frozen, empty, prototype-less object, so a key
 * such as `__proto__` or `constructor` stays plain own data and nothing is inherited. Not
 * `Object.create(null)`: V8 makes that a dictionary-mode object, ~200 B for two readings and ~3×
 * slower to fill, where this is a fast object sharing its shape with every device sending the same
 * keys (~70 B; measured for the heap per device, docs/performance.md).
 */
const READINGS_PROTOTYPE: object = Object.freeze(Object.create(null) as object);
export const newReadings = (): Record<string, number> => Object.create(READINGS_PROTOTYPE) as Record<string, number>;

/** Returned instead of a count when more than `maxKeys` readings would be stored. */
export const TOO_MANY = -1;

/**
 * Adds `value` under `key` (depth 1 = a direct key of the metrics object) to `into`; returns the new
 * count of stored readings, or TOO_MANY.
 */
export function addReading(
  into: Record<string, number>,
  key: string,
  value: unknown,
  depth: number,
  count: number,
  maxKeys: number,
  maxDepth: number,
  onSkip: OnSkip | undefined,
): number {
  if (key.length === 0 || key.length > MAX_METRIC_KEY_LENGTH) {
    onSkip?.('bad_key');
    return count;
  }
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) {
        onSkip?.('not_finite');
        return count;
      }
      return store(into, key, value, count, maxKeys);
    case 'boolean':
      return store(into, key, value ? 1 : 0, count, maxKeys);
    case 'string':
      onSkip?.('string');
      return count;
    case 'object':
      if (value === null) {
        onSkip?.('null');
        return count;
      }
      if (Array.isArray(value)) return addArray(into, key, value, depth, count, maxKeys, maxDepth, onSkip);
      if (depth >= maxDepth) {
        onSkip?.('too_deep');
        return count;
      }
      for (const inner in value) {
        if (!Object.hasOwn(value, inner)) continue;
        count = addReading(into, `${key}.${inner}`, (value as Record<string, unknown>)[inner], depth + 1, count, maxKeys, maxDepth, onSkip);
        if (count === TOO_MANY) return TOO_MANY;
      }
      return count;
    default:
      onSkip?.('null');
      return count;
  }
}

/**
 * An array of numbers (booleans as 1/0) is one reading per element under `key.0`, `key.1`, …,
 * each counted against `maxKeys` like any reading; an element that is not finite is skipped as
 * `not_finite`. An array holding anything else (objects, strings, nulls: lists of records, not
 * channels), or nothing, is skipped whole as `array`, as is one at the depth bound (`too_deep`).
 */
function addArray(
  into: Record<string, number>,
  key: string,
  value: readonly unknown[],
  depth: number,
  count: number,
  maxKeys: number,
  maxDepth: number,
  onSkip: OnSkip | undefined,
): number {
  if (value.length === 0) {
    onSkip?.('array');
    return count;
  }
  for (let i = 0; i < value.length; i++) {
    const element = typeof value[i];
    if (element !== 'number' && element !== 'boolean') {
      onSkip?.('array');
      return count;
    }
  }
  if (depth >= maxDepth) {
    onSkip?.('too_deep');
    return count;
  }
  for (let i = 0; i < value.length; i++) {
    count = addReading(into, `${key}.${i}`, value[i], depth + 1, count, maxKeys, maxDepth, onSkip);
    if (count === TOO_MANY) return TOO_MANY;
  }
  return count;
}

function store(into: Record<string, number>, key: string, value: number, count: number, maxKeys: number): number {
  if (!(key in into)) {
    if (count + 1 > maxKeys) return TOO_MANY;
    count++;
  }
  into[key] = value;
  return count;
}
