import { z } from 'zod';
import type { VigilDb } from '../../storage/database.js';
import { listDead, outboxStats, replayDead } from '../../storage/outbox-repository.js';
import { route, type Route } from './router.js';
import { respondLater } from './respond.js';

const DEAD_SHOWN = 100;

const replayBody = z.object({ sink: z.string().regex(/^(webhook|alertmanager)-([0-9a-f]{8}|\d{1,4})$/, 'a sink name like webhook-3f0c9a52 (GET /admin/notifications lists them)').optional() }).strict();

/** A configured sink as the routes show it: its name and its origin (never the full URL). */
export interface SinkView {
  readonly name: string;
  readonly target: string;
}

/**
 * The notification outbox as operators see it (docs/notifications.md): per sink what waits and what
 * was given up, and a replay of the dead. Fleet-wide (events name any device): admin keys not
 * limited to devices only.
 */
export function notificationRoutes(db: VigilDb, sinks: readonly SinkView[]): Route[] {
  const names = sinks.map((s) => s.name);
  return [
    route({
      method: 'GET',
      path: '/admin/notifications',
      summary: `The notification outbox: per sink (configured ones, then any other with rows) pending, dead and the oldest pending age; the ${DEAD_SHOWN} newest dead events`,
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
              sinks: [
                ...sinks.map(({ name, target }) => {
                  const s = stats.find((x) => x.sink === name);
                  return { sink: name, target, configured: true, pending: s?.pending ?? 0, dead: s?.dead ?? 0, oldest_pending_s: s?.oldestPendingS ?? 0 };
                }),
                // Rows of sinks whose URL left the lists: pending ones wait for NOTIFY_REMOVED_SINK_GRACE_S, then go dead.
                ...stats
                  .filter((s) => !names.includes(s.sink))
                  .map((s) => ({ sink: s.sink, target: null, configured: false, pending: s.pending, dead: s.dead, oldest_pending_s: s.oldestPendingS })),
              ],
              dead: dead.map((d) => ({ seq: d.seq, id: d.id, sink: d.sink, type: d.type, attempts: d.attempts, last_error: d.lastError, created_at: d.createdAt })),
            },
          ];
        }, r.aborted);
      },
    }),
    route({
      method: 'POST',
      path: '/admin/notifications/replay',
      summary: 'Dead notifications (of one configured sink, or of all configured ones) pending again with a fresh attempt budget',
      action: 'notifications.admin',
      device: 'none',
      body: replayBody,
      optionalBody: true,
      ok: '200',
      answers: { '409': 'The sink is not configured on this hub (sink_not_configured): its events would go to no receiver' },
      handle(res, r) {
        respondLater(res, async () => {
          const sink = r.body.sink ?? null;
          if (sink !== null && !names.includes(sink)) {
            return ['409 Conflict', { detail: `${sink} is not configured here: its events would go to no receiver`, error: { code: 'sink_not_configured', message: 'replay a configured sink (GET /admin/notifications lists them)' } }];
          }
          return ['200 OK', { replayed: await replayDead(db, sink, names) }];
        }, r.aborted);
      },
    }),
  ];
}
