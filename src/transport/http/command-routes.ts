import { z } from 'zod';
import { isDeviceId } from '../../domain/device-id.js';
import type { Hub } from '../../hub/hub.js';
import type { Database } from '../../storage/database.js';
import { listCommands } from '../../storage/command-repository.js';
import { route, type Route } from './router.js';
import { respondLater, sendJson } from './respond.js';

export const commandBody = z
  .object({
    command: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/),
    params: z.record(z.string(), z.unknown()).default({}),
    timeout_s: z.number().int().min(1).max(3600).default(30),
    max_attempts: z.number().int().min(1).max(10).default(3),
    expires_in_s: z.number().int().min(1).max(7 * 86_400).default(3600),
  })
  .strict();

export const commandsQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) });
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/** POST /devices/{id}/commands (202 with command_id; Idempotency-Key honoured) and GET /devices/{id}/commands. */
export function commandRoutes(hub: Hub, database: Database): Route[] {
  return [
    route({
      method: 'POST',
      path: '/devices/{device_id}/commands',
      summary: 'Send a command (202 with command_id; Idempotency-Key header honoured)',
      action: 'device.command',
      device: 'path',
      body: commandBody,
      headers: ['idempotency-key'],
      ok: '202',
      answers: { '200': 'The command already made with this Idempotency-Key', '503': 'The owning instance did not answer (owner_unavailable): retry with the same Idempotency-Key' },
      handle(res, r) {
        const id = r.params[0]!;
        const key = r.headers['idempotency-key']!;
        if (!isDeviceId(id)) {
          sendJson(res, '422 Unprocessable Entity', { detail: [{ loc: ['path', 'device_id'], msg: 'device ids are 1-128 chars of [A-Za-z0-9._:-]', type: 'invalid_string' }] });
          return;
        }
        if (key && !IDEMPOTENCY_KEY.test(key)) {
          sendJson(res, '422 Unprocessable Entity', { detail: [{ loc: ['header', 'idempotency-key'], msg: '1-128 printable ASCII characters', type: 'invalid_string' }] });
          return;
        }
        const q = r.body;
        const submitted = hub.submitCommand(
          id,
          { command: q.command, params: q.params, timeoutS: q.timeout_s, maxAttempts: q.max_attempts, expiresInS: q.expires_in_s },
          key || null,
        );
        if (!(submitted instanceof Promise)) return sendJson(res, submitted.created ? '202 Accepted' : '200 OK', submitted.command);
        // Cluster: the device's owner took it (or did not answer).
        respondLater(
          res,
          async () => {
            const answer = await submitted;
            if (answer === null) return ['503 Service Unavailable', { detail: 'the instance that owns this device did not answer; retry with the same Idempotency-Key', error: { code: 'owner_unavailable', message: 'retry' } }];
            return [answer.created ? '202 Accepted' : '200 OK', answer.command];
          },
          r.aborted,
        );
      },
    }),
    route({
      method: 'GET',
      path: '/devices/{device_id}/commands',
      summary: 'Commands of a device, newest first',
      action: 'device.read',
      device: 'path',
      query: commandsQuery,
      ok: '200',
      handle(res, r) {
        const id = r.params[0]!;
        respondLater(res, async () => ['200 OK', { device_id: id, commands: await hub.commandViews.list(id, r.query.limit, listCommands(database.db, id, r.query.limit)) }], r.aborted);
      },
    }),
  ];
}
