import { desc, eq, inArray } from 'drizzle-orm';
import type { VigilDb } from './database.js';
import { commands } from './schema/index.js';
import type { Command } from '../domain/command.js';

const toCommand = (r: typeof commands.$inferSelect): Command => ({
  id: r.id,
  deviceId: r.deviceId,
  command: r.command,
  params: r.params,
  state: r.state,
  attempts: r.attempts,
  maxAttempts: r.maxAttempts,
  timeoutS: r.timeoutS,
  idempotencyKey: r.idempotencyKey,
  result: r.result,
  createdAt: r.createdAt.getTime(),
  updatedAt: r.updatedAt.getTime(),
  expiresAt: r.expiresAt.getTime(),
});

/** Commands not finished when the hub stopped: they are queued again (or expire) at start. */
export async function loadPendingCommands(db: VigilDb): Promise<Command[]> {
  return (await db.select().from(commands).where(inArray(commands.state, ['queued', 'sent', 'received']))).map(toCommand);
}

export async function listCommands(db: VigilDb, deviceId: string, limit: number): Promise<Command[]> {
  const rows = await db.select().from(commands).where(eq(commands.deviceId, deviceId)).orderBy(desc(commands.createdAt)).limit(limit);
  return rows.map(toCommand);
}
