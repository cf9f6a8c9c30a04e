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

export function scoreComponents(i: HealthInputs): Partial<Record<Component, { value: number | null; score: number }>> {
  const out: Partial<Record<Component, { value: number | null; score: number }>> = {};
  // Online now counts half, uptime over 24 h the other half; flapping costs 25 points.
  const uptime = i.uptime24h ?? (i.online ? 1 : 0);
  const availability = 50 * (i.online ? 1 : 0) + 50 * uptime - (i.flapping ? 25 : 0);
  out.availability = { value: Math.round(uptime * 1000) / 1000, score: Math.round(Math.max(0, Math.min(100, availability)) * 10) / 10 };
  if (i.battery !== null) out.battery = { value: i.battery, score: linear(i.battery, 10, 50) };
  if (i.rssi !== null) out.signal = { value: i.rssi, score: linear(i.rssi, -100, -50) };
  if (i.errorRate !== null) out.error_rate = { value: i.errorRate, score: linear(i.errorRate, 0.2, 0) };
  if (i.responseTimeMs !== null) out.response_time = { value: Math.round(i.responseTimeMs), score: linear(i.responseTimeMs, 2000, 200) };
  if (i.silenceMs !== null) {
    out.freshness = { value: Math.round(i.silenceMs / 1000), score: linear(i.silenceMs, i.timeoutMs, i.timeoutMs / 4) };
  }
  return out;
}

export function computeHealth(inputs: HealthInputs, weights: Weights = DEFAULT_WEIGHTS): HealthScore {
  const parts = scoreComponents(inputs);
  let total = 0;
  let weightSum = 0;
  const components: Partial<Record<Component, ComponentScore>> = {};
  for (const name of COMPONENTS) {
    const part = parts[name];
    const weight = weights[name];
    if (part === undefined || weight <= 0) continue;
    components[name] = { value: part.value, score: part.score, weight };
    total += part.score * weight;
    weightSum += weight;
  }
  return { score: weightSum > 0 ? Math.round((total / weightSum) * 10) / 10 : 0, components };
}
