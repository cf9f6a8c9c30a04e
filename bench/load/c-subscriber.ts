import { spawn } from 'node:child_process';
import { connectAsync } from 'mqtt';
import { cpuMsOf } from '../bench-env.js';

export interface CSubscriberRun {
  /** Resolves once `expect` messages arrived (or nothing arrived for `idleMs`). */
  readonly result: Promise<{ received: number; seconds: number; cpuUsPerMsg: number }>;
}

/**
 * The broker's own egress limit: Mosquitto's C client `mosquitto_sub` (MQTT 5, the hub's QoS)
 * subscribed to `<prefix>/+/telemetry`, writing each payload as a line to a pipe this process
 * counts. Its CPU (user + system, /proc) is read at the first and the last counted message, so it
 * is what the C client spends per message, comparable with the hub's and the bare subscriber's.
 * Resolves `ready` once the subscription is up (a probe message came through), so the publisher
 * can start; needs `mosquitto_sub` on the PATH (package mosquitto-clients).
 */
export async function startCSubscriber(mqttUrl: string, prefix: string, qos: 0 | 1, expect: number, idleMs = 3000): Promise<CSubscriberRun> {
  const url = new URL(mqttUrl);
  const child = spawn('mosquitto_sub', ['-h', url.hostname, '-p', url.port || '1883', '-V', '5', '-q', String(qos), '-i', `vigil-bench-c-${process.pid}`, '-t', `${prefix}/+/telemetry`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`mosquitto_sub exited with ${code}`))));
  // Subscribed once a probe published to a topic it follows comes back (no fixed wait).
  const probe = await connectAsync(mqttUrl, { clientId: `vigil-bench-c-probe-${process.pid}`, log: () => undefined });
  let probing = true;
  const firstLine = new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  const send = () => {
    if (probing) probe.publish(`${prefix}/probe/telemetry`, 'probe', { qos: 0 }, () => setTimeout(send, 100));
  };
  send();
  await Promise.race([firstLine, exited]);
  probing = false;
  await probe.endAsync();

  // The ready probe's line was read by the once() above; a probe still in flight then would add one.
  let received = 0;
  let first = 0;
  let last = 0;
  let cpuAtFirst = 0;
  let cpuAtLast = 0;
  const result = new Promise<{ received: number; seconds: number; cpuUsPerMsg: number }>((resolve, reject) => {
    const finish = () => {
      clearInterval(idle);
      child.kill('SIGKILL');
      resolve({ received, seconds: (last - first) / 1000, cpuUsPerMsg: received > 1 ? ((cpuAtLast - cpuAtFirst) * 1000) / (received - 1) : NaN });
    };
    const idle = setInterval(() => {
      if (received > 0 && performance.now() - last > idleMs) finish();
    }, 100);
    child.stdout!.on('data', (chunk: Buffer) => {
      let lines = 0;
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
      if (lines === 0) return;
      const now = performance.now();
      if (received === 0) {
        first = now;
        cpuAtFirst = cpuMsOf(child.pid!);
      }
      received += lines;
      last = now;
      cpuAtLast = cpuMsOf(child.pid!);
      if (received >= expect) finish();
    });
    exited.catch(reject);
  });
  return { result };
}
