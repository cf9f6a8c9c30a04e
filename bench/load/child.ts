import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs a load-generator script as its own process (the machine has 2 cores: generators must not
 * share the measured process's event loop). The child prints one JSON line as its result.
 */
export function runChild<T>(script: string, args: Record<string, string | number>, timeoutMs = 120_000): { child: ChildProcess; result: Promise<T> } {
  const argv = Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)]);
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const result = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as T);
      } catch {
        reject(new Error(`${script} exited ${code} without a result: ${out.slice(-500)}`));
      }
    });
  });
  return { child, result };
}

/** Waits until a child prints a line containing `marker` (e.g. "ready"). */
export function waitForLine(child: ChildProcess, marker: string, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${marker}" within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer) => {
      if (d.toString().includes(marker)) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
  });
}
