import { execFileSync, spawnSync } from 'node:child_process';
import { spawnHub } from '../../tests/helpers/hub-process.js';
import type { Figure } from '../report.js';

/**
 * `wrk` against GET /status/{id} with a warm registry (the seed asked for 1000+ requests/s with p95
 * < 100 ms). The hub runs in its own process on embedded defaults; wrk shares the 2 cores with it.
 */
export async function restScenario(seconds = 10): Promise<Figure[]> {
  if (spawnSync('wrk', ['--version']).error) {
    return [{ scenario: 'rest', metric: 'GET /status/{id} requests/s', value: NaN, unit: 'req/s', note: 'skipped: wrk is not installed (apt-get install wrk)' }];
  }
  const hub = await spawnHub({ PORT: '0', MQTT_PORT: '0', DATA_DIR: `/tmp/vigil-bench-rest-${Date.now()}`, HTTP_RATE_PER_S: '1000000', HTTP_RATE_BURST: '1000000' });
  try {
    const base = `http://127.0.0.1:${hub.port}`;
    await fetch(`${base}/status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: 'bench-1', battery_level: 76, rssi: -60, online: true }) });
    const out = execFileSync('wrk', ['-t2', '-c64', `-d${seconds}s`, '--latency', `${base}/status/bench-1`], { encoding: 'utf8' });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const latency = (p: string) => {
      const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
      if (!m) return NaN;
      return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
    };
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
    return [
      { scenario: 'rest', metric: 'GET /status/{id} requests/s', value: rps, unit: 'req/s', note: `wrk -t2 -c64 ${seconds}s, ${non2xx} non-2xx; wrk shares the 2 cores` },
      { scenario: 'rest', metric: 'GET /status/{id} latency p50', value: latency('50'), unit: 'ms' },
      { scenario: 'rest', metric: 'GET /status/{id} latency p99', value: latency('99'), unit: 'ms' },
    ];
  } finally {
    await hub.stop();
  }
}
