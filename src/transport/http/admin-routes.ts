import { z } from 'zod';
import { SCOPES, type ApiKey, type ApiKeyStore } from '../../security/api-keys.js';
import type { WsTokens } from '../../security/ws-token.js';
import type { TemplatedApp } from '../uws.js';
import type { Guard } from './guard.js';
import { readJsonBody, respondLater, sendJson, validationError } from './respond.js';

export const createKeyBody = z
  .object({
    name: z.string().min(1).max(100),
    scopes: z.array(z.enum(SCOPES)).min(1),
    device_ids: z.array(z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/)).max(10_000).optional(),
  })
  .strict();

export const keyView = (k: ApiKey) => ({
  id: k.id,
  name: k.name,
  scopes: [...k.scopes],
  device_ids: k.deviceIds ? [...k.deviceIds] : null,
  created_at: new Date(k.createdAt).toISOString(),
});

/** API keys (admin scope) and short-lived WebSocket tokens for browsers. */
export function attachAdminRoutes(app: TemplatedApp, keys: ApiKeyStore, tokens: WsTokens, maxBodyBytes: number, guard: Guard): void {
  app.post('/admin/keys', guard('admin', (res) => {
    readJsonBody(res, maxBodyBytes, (body, aborted) => {
      if (!body.ok) return;
      const parsed = createKeyBody.safeParse(body.value);
      if (!parsed.success) return res.cork(() => sendJson(res, '422 Unprocessable Entity', validationError('body', parsed.error)));
      respondLater(res, async () => {
        const created = await keys.create(parsed.data.name, parsed.data.scopes, parsed.data.device_ids ?? null);
        return ['201 Created', { ...keyView(created.key), key: created.token, note: 'the key is shown once; only its hash is stored' }];
      }, aborted);
    });
  }));

  app.get('/admin/keys', guard('admin', (res) => {
    sendJson(res, '200 OK', { keys: keys.list().map(keyView) });
  }));

  app.del('/admin/keys/:id', guard('admin', (res, req) => {
    const id = req.getParameter(0) ?? '';
    respondLater(res, async () => ((await keys.revoke(id)) ? ['200 OK', { id, revoked: true }] : ['404 Not Found', { detail: `Key ${id.slice(0, 32)} not found` }]));
  }));

  app.post('/ws-token', guard('read', (res, _req, ctx) => {
    if (ctx.principal.kind !== 'key') {
      sendJson(res, '409 Conflict', { detail: 'this hub needs no key: connect to /ws without a token' });
      return;
    }
    const issued = tokens.issue(ctx.principal.key.id, Date.now());
    sendJson(res, '200 OK', { token: issued.token, expires_at: new Date(issued.expiresAt).toISOString() });
  }));
}
