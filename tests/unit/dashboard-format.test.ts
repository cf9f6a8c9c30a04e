import { describe, expect, it } from 'vitest';
// The dashboard's own module, as the browser loads it (plain ES module, no build step).
import { age, dbm, duration, percent, reading, scoreBand, setMetricUnits, unitOf } from '../../public/format.js';

describe('dashboard formatting', () => {
  it('shows ages as people read them', () => {
    const now = 1_800_000_000_000;
    expect(age(now - 500, now)).toBe('just now');
    expect(age(now - 42_000, now)).toBe('42 s ago');
    expect(age(now - 3 * 60_000 - 5000, now)).toBe('3 min ago');
    expect(age(now - (5 * 3600 + 120) * 1000, now)).toBe('5 h 2 min ago');
    expect(age(now - 2 * 86_400_000 - 3600_000, now)).toBe('2 d 1 h ago');
    expect(age(null, now)).toBe('—');
    expect(age(now + 5000, now)).toBe('just now'); // a clock ahead of ours is not "in the future"
    expect(duration(125_000)).toBe('2 min');
  });

  it('puts units on every reading, error rates as percent', () => {
    expect(percent(87.4)).toBe('87 %');
    expect(dbm(-61.2)).toBe('-61 dBm');
    expect(reading('error_rate', 0.25)).toBe('25.0 %');
    expect(reading('metrics.temperature', 21.456)).toBe('21.46 °C');
    expect(reading('metrics.flux', 21.456)).toBe('21.46'); // no unit known
    expect(reading('response_time_mean10', 1234.5)).toBe('1235 ms');
    expect(unitOf('battery_level')).toBe('%');
    expect(percent(null)).toBe('—');
    expect(percent(Number.NaN)).toBe('—');
  });

  it('names the score bands so colour is never the only signal', () => {
    expect([scoreBand(80), scoreBand(79.9), scoreBand(50), scoreBand(49), scoreBand(null)]).toEqual(['good', 'fair', 'fair', 'poor', 'none']);
  });

  it('knows the units of common sensor metrics, and takes the hub\'s METRIC_UNITS over them', () => {
    const expected = { temperature: '°C', humidity: '%', pressure: 'hPa', voltage: 'V', current: 'A', power: 'W', energy: 'kWh', linkquality: 'lqi', illuminance: 'lx', co2: 'ppm' };
    for (const [name, unit] of Object.entries(expected)) expect({ name, unit: unitOf(name) }).toEqual({ name, unit });
    expect(unitOf('metrics.temperature')).toBe('°C');
    expect(unitOf('outdoor_temperature')).toBe('°C');
    expect(unitOf('flux_capacitance')).toBe('');
    expect(reading('temperature', 21.567)).toBe('21.57 °C');
    expect(reading('humidity', 48)).toBe('48 %');
    setMetricUnits({ flux_capacitance: 'GW', temperature: '°F' });
    try {
      expect(unitOf('flux_capacitance')).toBe('GW');
      expect(reading('temperature', 70)).toBe('70 °F');
      expect(unitOf('__proto__')).toBe('');
    } finally {
      setMetricUnits({});
    }
    expect(unitOf('temperature')).toBe('°C');
  });
});
