import { z } from 'zod';
import type { VigilDb } from '../../storage/database.js';
import { listDead, outboxStats, replayDead } from '../../storage/outbox-repository.js';
import { route, type Route } from './router.js';
import { respondLater } from './respond.js';

const DEAD_SHOWN = 100;

const replayBody = z.object({ sink: z.string().regex(/^[a-z]+-\d{1,3}$/, 'a sink name like webhook-1').optional() }).strict();

/**
 * The notification outbox as operators see it (docs/notifications.md): per sink what waits and what
 * was given up, and a replay of the dead. Fleet-wide (events name any device): admin keys not
 * limited to devices only.
 */
export function notificationRoutes(db: VigilDb, sinks: readonly string[]): Route[] {
  return [
    route({
      method: 'GET',
      path: '/admin/notifications',
      summary: `The notification outbox: per configured sink pending, dead and the oldest pending age; the ${DEAD_SHOWN} newest dead events`,
      action: 'notifications.admin',
      device: 'none',
      ok: '200',
      handle(res, r) {
        respondLater(res, async () => {
          const stats = await outboxStats(db);
          const dead = await listDead(db, DEAD_SHOWN);
          return [
            '200 OK',
            {
              sinks: sinks.map((name) => {
                const s = stats.find((x) => x.sink === name);
                return { sink: name, pending: s?.pending ?? 0, dead: s?.dead ?? 0, oldest_pending_s: s?.oldestPendingS ?? 0 };
              }),
              dead: dead.map((d) => ({ seq: d.seq, id: d.id, sink: d.sink, type: d.type, attempts: d.attempts, last_error: d.lastError, created_at: d.createdAt })),
            },
          ];
        }, r.aborted);
      },
    }),
    route({
      method: 'POST',
      path: '/admin/notifications/replay',
      summary: 'Dead notifications (of one sink, or all) pending again with a fresh attempt budget',
      action: 'notifications.admin',
      device: 'none',
      body: replayBody,
      optionalBody: true,
      ok: '200',
      handle(res, r) {
        respondLater(res, async () => ['200 OK', { replayed: await replayDead(db, r.body.sink ?? null) }], r.aborted);
      },
    }),
  ];
}
