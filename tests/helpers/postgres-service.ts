import { execSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';

const version = () => readdirSync('/etc/postgresql')[0]!;

export function stopPostgres(): void {
  execSync(`pg_ctlcluster --skip-systemctl-redirect ${version()} main stop -m fast`, { stdio: 'ignore' });
}

export async function startPostgres(): Promise<void> {
  if (!(await postgresUp())) execSync(`pg_ctlcluster --skip-systemctl-redirect ${version()} main start`, { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await postgresUp()); i++) await new Promise((r) => setTimeout(r, 100));
}

export function postgresUp(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: 5432 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
