import { execFileSync, spawnSync } from 'node:child_process';
import { connect } from 'node:net';

const running = () => spawnSync('pgrep', ['-x', 'mosquitto']).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stops this machine's Mosquitto with SIGTERM (it saves its sessions to disk) and waits for it to exit. */
export async function stopMosquitto(): Promise<void> {
  spawnSync('pkill', ['-TERM', '-x', 'mosquitto']);
  for (let i = 0; i < 100 && running(); i++) await sleep(50);
}

/** Starts it again as DEVELOPERS.md does, and waits until it accepts connections. */
export async function startMosquitto(): Promise<void> {
  if (!(await mosquittoUp()) && !running()) execFileSync('mosquitto', ['-d', '-c', '/etc/mosquitto/mosquitto.conf']);
  for (let i = 0; i < 100 && !(await mosquittoUp()); i++) await sleep(100);
  if (!(await mosquittoUp())) throw new Error('Mosquitto did not come back');
}

export function mosquittoUp(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: 1883 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
