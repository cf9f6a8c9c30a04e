import { createBenchHub } from '../bench-hub.js';
import type { Figure } from '../report.js';

/**
 * Hub heap per device: the registry (state, newest telemetry) plus in-process presence, for 100k
 * devices that each sent one message. Storage is left out (a sink that keeps nothing), so this is
 * the hub's own cost. Run with --expose-gc for a stable figure.
 */
export async function footprintScenario(devices = 100_000): Promise<Figure[]> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const { hub, presence } = await createBenchHub();
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const now = Date.now();
  for (let i = 0; i < devices; i++) {
    hub.ingestTelemetry({
      deviceId: `device-${i}`,
      ts: now,
      receivedAt: now,
      batteryLevel: 80,
      rssi: -60,
      responseTimeMs: 120,
      errorRate: 0.01,
      metrics: { temperature: 21.5, humidity: 40 },
    });
  }
  gc?.();
  const perDevice = (process.memoryUsage().heapUsed - before) / devices;
  await presence.stop();
  return [{ scenario: 'footprint', metric: 'hub heap per device', value: perDevice, unit: 'bytes', note: `${devices} devices, registry + in-process presence${gc ? '' : ' (no --expose-gc: rough)'}` }];
}
