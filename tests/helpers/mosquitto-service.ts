import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A Mosquitto of the test's own, run with the broker settings Vigil ships
 * (deploy/mosquitto/mosquitto.conf: persistence, deep session queues), on its own port and data
 * directory, so a test can stop and start it without disturbing the machine's broker.
 */
export class TestBroker {
  private child: ChildProcess | null = null;
  readonly url: string;
  private readonly conf: string;

  constructor(readonly port: number) {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-broker-'));
    mkdirSync(join(dir, 'data'));
    // Mosquitto started as root drops to its own user, which must be able to write here.
    chmodSync(dir, 0o777);
    chmodSync(join(dir, 'data'), 0o777);
    const shipped = readFileSync(new URL('../../deploy/mosquitto/mosquitto.conf', import.meta.url), 'utf8');
    this.conf = join(dir, 'mosquitto.conf');
    writeFileSync(
      this.conf,
      shipped.replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`).replace(/^persistence_location .*$/m, `persistence_location ${join(dir, 'data')}/`),
    );
    chmodSync(this.conf, 0o644);
    this.url = `mqtt://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    this.child = spawn('mosquitto', ['-c', this.conf], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await this.up()); i++) await sleep(50);
    if (!(await this.up())) throw new Error(`test broker did not start on ${this.port}`);
  }

  /** SIGTERM: Mosquitto saves its sessions and queued messages to disk and exits. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  }

  up(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: this.port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }
}
