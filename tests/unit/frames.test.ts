import fc from 'fast-check';
import { expect, it } from 'vitest';
import { decodeTelemetry } from '../../src/domain/telemetry.js';
import { deviceUpdateFrame, deviceUpdateFrameReference } from '../../src/hub/frames.js';
import { blankState } from '../../src/domain/device-state.js';

const limits = { maxPayloadBytes: 16_384, maxMetricKeys: 64, maxFutureSkewMs: 300_000 };
const optional = <T,>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

it('the hand-written device_update frame is exactly JSON.stringify of the documented object', () => {
  const now = Date.now();
  let compared = 0;
  fc.assert(
    fc.property(
      fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/),
      fc.nat(1_000_000),
      fc.record({
        battery_level: optional(fc.double({ min: 0, max: 100, noNaN: true })),
        rssi: optional(fc.double({ min: -140, max: 0, noNaN: true })),
        response_time_ms: optional(fc.double({ min: 0, max: 1e9, noNaN: true })),
        error_rate: optional(fc.double({ min: 0, max: 1, noNaN: true })),
        metrics: optional(fc.dictionary(fc.string({ maxLength: 12 }).filter((k) => k !== '__proto__'), fc.double({ noNaN: true, noDefaultInfinity: true }), { maxKeys: 5 })),
        timestamp: optional(fc.integer({ min: now - 10 * 86_400_000, max: now })),
      }),
      (deviceId, seq, body) => {
        const decoded = decodeTelemetry(deviceId, Buffer.from(JSON.stringify(body)), now, limits);
        if (!decoded.ok) return;
        const state = blankState(deviceId);
        state.seq = seq;
        const fast = deviceUpdateFrame(state, decoded.telemetry);
        expect(fast).toBe(deviceUpdateFrameReference(state, decoded.telemetry));
        JSON.parse(fast);
        compared++;
      },
    ),
    { numRuns: 2000 },
  );
  expect(compared).toBeGreaterThan(1000); // most generated bodies are valid telemetry
});
