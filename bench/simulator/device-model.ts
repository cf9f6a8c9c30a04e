/** How a simulated device misbehaves; `normal` devices just report. */
export type Behaviour = 'normal' | 'low_battery' | 'error_spikes' | 'slow' | 'silent' | 'last_will' | 'flapping';

export interface SimulatedDevice {
  readonly id: string;
  readonly behaviour: Behaviour;
  battery: number;
  readonly rssiBase: number;
  readonly phase: number;
  /** For `silent` and `last_will`: when it stops (ms after start). */
  readonly stopsAt: number;
  stopped: boolean;
}

/** Small deterministic PRNG so a run with the same seed produces the same fleet. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export function createFleet(
  count: number,
  shares: Readonly<Partial<Record<Behaviour, number>>>,
  random: () => number,
  prefix = 'sim',
): SimulatedDevice[] {
  const order: Behaviour[] = ['low_battery', 'error_spikes', 'slow', 'silent', 'last_will', 'flapping'];
  const fleet: SimulatedDevice[] = [];
  const quota = new Map(order.map((b) => [b, Math.round((shares[b] ?? 0) * count)]));
  for (let i = 0; i < count; i++) {
    let behaviour: Behaviour = 'normal';
    for (const b of order) {
      const left = quota.get(b) ?? 0;
      if (left > 0) {
        behaviour = b;
        quota.set(b, left - 1);
        break;
      }
    }
    fleet.push({
      id: `${prefix}-${String(i).padStart(5, '0')}`,
      behaviour,
      battery: behaviour === 'low_battery' ? 22 + random() * 4 : 40 + random() * 60,
      rssiBase: -50 - random() * 40,
      phase: random() * Math.PI * 2,
      stopsAt: 10_000 + random() * 50_000,
      stopped: false,
    });
  }
  return fleet;
}

/** One telemetry message for a device at `elapsedMs` into the run. */
export function reading(device: SimulatedDevice, elapsedMs: number, random: () => number): Record<string, unknown> {
  const drain = device.behaviour === 'low_battery' ? 0.05 : 0.002;
  device.battery = Math.max(0, device.battery - drain * random());
  const t = elapsedMs / 1000;
  let responseTime = 40 + random() * 160;
  if (device.behaviour === 'slow') responseTime = 1200 + random() * 800;
  let errorRate = random() * 0.02;
  // Error spikes: 20 s bursts of 20–40 % errors every minute.
  if (device.behaviour === 'error_spikes' && (t + device.phase * 10) % 60 < 20) errorRate = 0.2 + random() * 0.2;
  return {
    timestamp: Date.now(),
    battery_level: round(device.battery),
    rssi: round(Math.min(0, Math.max(-140, device.rssiBase + (random() - 0.5) * 8))),
    response_time_ms: round(responseTime),
    error_rate: round(errorRate, 4),
    metrics: {
      temperature: round(21 + 4 * Math.sin(t / 60 + device.phase) + (random() - 0.5)),
      humidity: round(45 + 10 * Math.sin(t / 90 + device.phase) + (random() - 0.5) * 2),
    },
  };
}

/** Flapping devices are silent for 20 s of every 40 s: long enough to go offline at a short timeout. */
export function isFlappingOff(device: SimulatedDevice, elapsedMs: number): boolean {
  return device.behaviour === 'flapping' && (elapsedMs / 1000 + device.phase * 6) % 40 >= 20;
}

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Device types of the demo fleet, with names for some of each: every dashboard panel has something to show. */
const TYPES = ['thermostat', 'air-quality', 'energy-meter', 'water-leak', 'gateway'] as const;
const PLACES = ['Boiler room', 'Cold store', 'Office', 'Server room', 'Warehouse', 'Lobby', 'Roof', 'Basement'];

/** The type of the device at `index`, and a name for one in three (the others go by their id). */
export function deviceLabels(index: number): { type: string; name: string | null } {
  const type = TYPES[index % TYPES.length]!;
  const name = index % 3 === 0 ? `${PLACES[Math.floor(index / TYPES.length) % PLACES.length]} ${type.replace('-', ' ')} ${Math.floor(index / 3) + 1}` : null;
  return { type, name };
}
