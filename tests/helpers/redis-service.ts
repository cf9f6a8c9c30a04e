import { execFileSync, spawnSync } from 'node:child_process';

/** The command this machine's Redis was started with (DEVELOPERS.md), used to bring it back. */
const START = ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', '6379', '--save', '', '--appendonly', 'no', '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log'];

export function redisUp(): boolean {
  return spawnSync('redis-cli', ['-p', '6379', 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG';
}

/** Stops the real Redis (losing everything, as a restart without persistence does). */
export function stopRedis(): void {
  spawnSync('redis-cli', ['-p', '6379', 'shutdown', 'nosave']);
}

export async function startRedis(): Promise<void> {
  if (!redisUp()) execFileSync('redis-server', START);
  for (let i = 0; i < 50 && !redisUp(); i++) await new Promise((r) => setTimeout(r, 100));
  if (!redisUp()) throw new Error('Redis did not come back');
}
