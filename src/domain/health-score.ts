/**
 * The health score (0–100) of a device: a weighted mean of component scores, each 0–100. A
 * component the device gives no data for (say, no battery) is left out and the others' weights
 * renormalised. docs/health-and-alerts.md shows the formula with worked examples.
 */
export const COMPONENTS = ['availability', 'battery', 'signal', 'error_rate', 'response_time', 'freshness'] as const;
export type Component = (typeof COMPONENTS)[number];
export type Weights = Readonly<Record<Component, number>>;

export const DEFAULT_WEIGHTS: Weights = {
  availability: 30,
  battery: 20,
  signal: 15,
  error_rate: 15,
  response_time: 10,
  freshness: 10,
};

export interface HealthInputs {
  readonly online: boolean;
  /** Share of the last 24 h online (0..1), or null when unknown. */
  readonly uptime24h: number | null;
  readonly flapping: boolean;
  readonly battery: number | null;
  readonly rssi: number | null;
  readonly errorRate: number | null;
  /** Mean of the recent response times. */
  readonly responseTimeMs: number | null;
  /** Time since the device was last heard from, and its offline timeout. */
  readonly silenceMs: number | null;
  readonly timeoutMs: number;
}

export interface ComponentScore {
  readonly value: number | null;
  readonly score: number;
  readonly weight: number;
}

export interface HealthScore {
  readonly score: number;
  readonly components: Partial<Record<Component, ComponentScore>>;
}

/** Linear from `worst` (0 points) to `best` (100 points), clamped. */
export function linear(value: number, worst: number, best: number): number {
  const t = (value - worst) / (best - worst);
  return Math.round(Math.max(0, Math.min(1, t)) * 1000) / 10;
}

/** Numbers a packed score takes (`scoreInto`): the score, then each component's value and points. */
export const PACKED_HEALTH_WIDTH = 1 + 2 * COMPONENTS.length;

/**
 * The score and its components written as numbers at `out[at…]` (the score first, then value and
 * points per component in COMPONENTS order, NaN points for a component left out): the form a fleet's
 * scores are kept in without an object per device. Returns the score.
 */
export function scoreInto(i: HealthInputs, weights: Weights, out: Float64Array, at: number): number {
  // Online now counts half, uptime over 24 h the other half; flapping costs 25 points.
  const uptime = i.uptime24h ?? (i.online ? 1 : 0);
  const availability = 50 * (i.online ? 1 : 0) + 50 * uptime - (i.flapping ? 25 : 0);
  put(out, at, 0, Math.round(uptime * 1000) / 1000, Math.round(Math.max(0, Math.min(100, availability)) * 10) / 10);
  put(out, at, 1, i.battery, i.battery === null ? NaN : linear(i.battery, 10, 50));
  put(out, at, 2, i.rssi, i.rssi === null ? NaN : linear(i.rssi, -100, -50));
  put(out, at, 3, i.errorRate, i.errorRate === null ? NaN : linear(i.errorRate, 0.2, 0));
  put(out, at, 4, i.responseTimeMs === null ? null : Math.round(i.responseTimeMs), i.responseTimeMs === null ? NaN : linear(i.responseTimeMs, 2000, 200));
  put(out, at, 5, i.silenceMs === null ? null : Math.round(i.silenceMs / 1000), i.silenceMs === null ? NaN : linear(i.silenceMs, i.timeoutMs, i.timeoutMs / 4));
  let total = 0;
  let weightSum = 0;
  for (let c = 0; c < COMPONENTS.length; c++) {
    const points = out[at + 2 + 2 * c]!;
    const weight = weights[COMPONENTS[c]!];
    if (Number.isNaN(points) || weight <= 0) {
      out[at + 2 + 2 * c] = NaN;
      continue;
    }
    total += points * weight;
    weightSum += weight;
  }
  const score = weightSum > 0 ? Math.round((total / weightSum) * 10) / 10 : 0;
  out[at] = score;
  return score;
}

function put(out: Float64Array, at: number, component: number, value: number | null, points: number): void {
  out[at + 1 + 2 * component] = value ?? NaN;
  out[at + 2 + 2 * component] = points;
}

/** The score written by `scoreInto` at `src[at…]`, as an object. */
export function healthFrom(src: Float64Array, at: number, weights: Weights): HealthScore {
  const components: Partial<Record<Component, ComponentScore>> = {};
  for (let c = 0; c < COMPONENTS.length; c++) {
    const points = src[at + 2 + 2 * c]!;
    if (Number.isNaN(points)) continue;
    const value = src[at + 1 + 2 * c]!;
    const name = COMPONENTS[c]!;
    components[name] = { value: Number.isNaN(value) ? null : value, score: points, weight: weights[name] };
  }
  return { score: src[at]!, components };
}

export function computeHealth(inputs: HealthInputs, weights: Weights = DEFAULT_WEIGHTS): HealthScore {
  const packed = new Float64Array(PACKED_HEALTH_WIDTH);
  scoreInto(inputs, weights, packed, 0);
  return healthFrom(packed, 0, weights);
}

/** A score kept as an object (restored from storage) written in `scoreInto`'s form. */
export function packHealth(health: HealthScore, out: Float64Array, at: number): void {
  out[at] = health.score;
  for (let c = 0; c < COMPONENTS.length; c++) {
    const part = health.components[COMPONENTS[c]!];
    out[at + 1 + 2 * c] = part?.value ?? NaN;
    out[at + 2 + 2 * c] = part?.score ?? NaN;
  }
}
