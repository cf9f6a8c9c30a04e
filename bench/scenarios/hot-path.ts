import { createBenchHub } from '../bench-hub.js';
import { decodeTelemetry } from '../../src/domain/telemetry.js';
import type { Figure } from '../report.js';

/**
 * CPU cost per message of each step of the hub's hot path, in-process (no sockets): decoding and
 * validation, the whole hub step (presence, registry, frame, fan-out call, scoring and rules), and
 * scoring and rules alone. Storage is a sink that keeps nothing here; the writer has its own scenario.
 */
export async function hotPathScenario(messages = 500_000, devices = 10_000): Promise<Figure[]> {
  const { hub, presence } = await createBenchHub();
  const limits = { maxPayloadBytes: 16_384, maxMetricKeys: 64, maxFutureSkewMs: 300_000 };
  const payloads = Array.from({ length: 100 }, (_, i) =>
    Buffer.from(JSON.stringify({ timestamp: Date.now(), battery_level: 50 + (i % 50), rssi: -60 - (i % 30), response_time_ms: 100 + i, error_rate: (i % 10) / 100, metrics: { temperature: 20 + (i % 5), humidity: 40 } })),
  );
  const ids = Array.from({ length: devices }, (_, i) => `dev-${i}`);
  const now = Date.now();

  let started = performance.now();
  let decoded = 0;
  for (let i = 0; i < messages; i++) if (decodeTelemetry(ids[i % devices]!, payloads[i % 100]!, now, limits).ok) decoded++;
  const decodeNs = ((performance.now() - started) * 1e6) / messages;

  const telemetry = Array.from({ length: 100 }, (_, i) => {
    const r = decodeTelemetry('x', payloads[i]!, now, limits);
    if (!r.ok) throw new Error('bench payload invalid');
    return r.telemetry;
  });
  started = performance.now();
  for (let i = 0; i < messages; i++) {
    const t = telemetry[i % 100]!;
    hub.ingestTelemetry({ ...t, deviceId: ids[i % devices]!, receivedAt: now + i });
  }
  const hubNs = ((performance.now() - started) * 1e6) / messages;

  const states = ids.map((id) => hub.registry.get(id)!);
  started = performance.now();
  for (let i = 0; i < messages; i++) hub.insights.onTelemetry(states[i % devices]!, telemetry[i % 100]!, now + messages + i);
  const insightsNs = ((performance.now() - started) * 1e6) / messages;
  await presence.stop();
  return [
    { scenario: 'hot path', metric: 'decode + validate', value: decodeNs, unit: 'ns/msg', note: `${decoded} messages, ~200-byte JSON` },
    { scenario: 'hot path', metric: 'hub step (presence, frame, scoring, rules)', value: hubNs, unit: 'ns/msg', note: `${devices} devices, no sockets` },
    { scenario: 'hot path', metric: 'scoring + rules alone', value: insightsNs, unit: 'ns/msg', note: 'score at most once a second per device' },
  ];
}
