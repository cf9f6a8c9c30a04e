import { z } from 'zod';
import type { Logger } from '../../logger.js';
import { SCOPES, type ApiKey, type ApiKeyStore } from '../../security/api-keys.js';
import { isJwtPrincipalId } from '../../security/jwt.js';
import { covers } from '../../security/policy.js';
import type { WsTokens } from '../../security/ws-token.js';
import { route, type Route } from './router.js';
import { respondLater, sendJson } from './respond.js';

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

const TOO_BROAD = 'a key can only create, see or revoke keys no broader than itself (scopes and devices)';

/** API keys (admin scope; never broader than the caller's own) and short-lived WebSocket tokens for browsers. */
export function adminRoutes(keys: ApiKeyStore, tokens: WsTokens, log: Logger): Route[] {
  return [
    route({
      method: 'POST',
      path: '/admin/keys',
      summary: 'Create an API key no broader than the caller (shown once; stored hashed)',
      action: 'keys.admin',
      device: 'none',
      body: createKeyBody,
      ok: '201',
      handle(res, r) {
        const { name, scopes, device_ids } = r.body;
        if (!covers(r.principal, scopes, device_ids ?? null)) return sendJson(res, ...r.forbidden(TOO_BROAD));
        respondLater(res, async () => {
          const created = await keys.create(name, scopes, device_ids ?? null);
          if (created.first) log.warn({ keyId: created.key.id }, 'first API key created: authentication is now required, and stays on even if every key is revoked');
          return ['201 Created', { ...keyView(created.key), key: created.token, note: 'the key is shown once; only its hash is stored' }];
        }, r.aborted);
      },
    }),
    route({
      method: 'GET',
      path: '/admin/keys',
      summary: 'List the API keys no broader than the caller (never the secrets)',
      action: 'keys.admin',
      device: 'none',
      ok: '200',
      handle(res, r) {
        sendJson(res, '200 OK', { keys: keys.list().filter((k) => covers(r.principal, k.scopes, k.deviceIds)).map(keyView) });
      },
    }),
    route({
      method: 'DELETE',
      path: '/admin/keys/{key_id}',
      summary: 'Revoke an API key no broader than the caller (409: the last admin key); its WebSocket sessions end',
      action: 'keys.admin',
      device: 'none',
      ok: '200',
      answers: { '404': 'No such key', '409': 'The last admin key not limited to devices (last_admin_key): create another first' },
      handle(res, r) {
        const id = r.params[0]!;
        const target = keys.get(id);
        const notFound = ['404 Not Found', { detail: `Key ${id.slice(0, 32)} not found` }] as const;
        if (target === null) return sendJson(res, ...notFound);
        if (!covers(r.principal, target.scopes, target.deviceIds)) return sendJson(res, ...r.forbidden(TOO_BROAD));
        respondLater(res, async () => {
          const outcome = await keys.revoke(id, true);
          if (outcome === 'last_admin') {
            log.warn({ keyId: id }, 'refused to revoke the last admin key');
            return ['409 Conflict', { detail: 'this is the last admin key: create another admin key first (the hub never goes back to serving without keys)', error: { code: 'last_admin_key', message: 'create another admin key first' } }];
          }
          if (outcome === 'not_found') return [...notFound];
          log.info({ keyId: id }, 'API key revoked');
          return ['200 OK', { id, revoked: true }];
        }, r.aborted);
      },
    }),
    route({
      method: 'POST',
      path: '/ws-token',
      summary: 'A short-lived token for a browser WebSocket (?token= or an auth message); the session ends when it expires unless renewed',
      action: 'token.issue',
      device: 'none',
      ok: '200',
      answers: { '409': 'The hub needs no key (connect without a token), or the request carried a JWT (use it as the token)' },
      handle(res, r) {
        if (r.principal.kind !== 'key') {
          sendJson(res, '409 Conflict', { detail: 'this hub needs no key: connect to /ws without a token' });
          return;
        }
        if (isJwtPrincipalId(r.principal.key.id)) {
          sendJson(res, '409 Conflict', { detail: 'a JWT is its own WebSocket token: connect to /ws?token=<the JWT>' });
          return;
        }
        const issued = tokens.issue(r.principal.key.id, Date.now());
        sendJson(res, '200 OK', { token: issued.token, expires_at: new Date(issued.expiresAt).toISOString() });
      },
    }),
  ];
}
