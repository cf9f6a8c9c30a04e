import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Held while a process has the embedded database of a DATA_DIR open. */
export interface DataDirLock {
  readonly path: string;
  release(): void;
}

interface LockRecord {
  readonly pid: number;
  readonly holder: string;
  readonly since: string;
}

export const LOCK_FILE = 'vigil.lock';

/** What to do instead, in every refusal: the usual cause is `npm run keys` beside a running hub. */
const INSTEAD =
  'PGlite allows one process per DATA_DIR (a second one corrupts it). While a hub runs on it, manage keys ' +
  'through the hub: POST /admin/keys, GET /admin/keys, DELETE /admin/keys/{id} (admin scope; ' +
  'docs/security.md), not npm run keys; a second hub needs its own DATA_DIR, or share a PostgreSQL DATABASE_URL';

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
}

/**
 * Takes DATA_DIR for this process, before PGlite opens it: a lock file created exclusively (O_EXCL)
 * holding the pid. A lock whose process is gone (killed, crashed) is stale and taken over. Two
 * processes taking over the same stale lock at the same instant is the one race left; it needs a
 * crashed holder and two starts within microseconds.
 */
export function lockDataDir(dataDir: string, holder: string): DataDirLock {
  const path = join(dataDir, LOCK_FILE);
  const record: LockRecord = { pid: process.pid, holder, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const current = readLock(path);
      if (current !== null && current.pid !== process.pid && isAlive(current.pid)) {
        throw new DataDirLockedError(
          `DATA_DIR ${dataDir} is in use by process ${current.pid} (${current.holder}, since ${current.since}). ${INSTEAD}. ` +
            `If no process ${current.pid} runs, delete ${path}.`,
        );
      }
      if (current === null && beingWritten(path)) {
        throw new DataDirLockedError(`DATA_DIR ${dataDir} is being taken by another process right now. ${INSTEAD}.`);
      }
      // Stale: its process is gone, or the pid is this process's own (a container's hub is pid 1 every time).
      removeIfPresent(path);
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(record));
    } finally {
      closeSync(fd);
    }
    return {
      path,
      release() {
        // Only our own: a lock taken over meanwhile (ours judged stale) is not ours to remove.
        if (readLock(path)?.pid === process.pid) removeIfPresent(path);
      },
    };
  }
  throw new DataDirLockedError(`DATA_DIR ${dataDir}: could not take ${path} (another process keeps taking it). ${INSTEAD}.`);
}

function readLock(path: string): LockRecord | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockRecord>;
    if (typeof parsed.pid !== 'number' || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return null;
    return { pid: parsed.pid, holder: String(parsed.holder ?? 'unknown'), since: String(parsed.since ?? 'unknown') };
  } catch {
    return null; // gone meanwhile, or half-written by a process that died while writing it: stale
  }
}

/** An unreadable lock file younger than this is taken to be mid-write by its (live) creator. */
const WRITE_GRACE_MS = 2000;

function beingWritten(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs < WRITE_GRACE_MS;
  } catch {
    return false;
  }
}

function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}
