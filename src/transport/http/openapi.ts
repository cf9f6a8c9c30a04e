import { z } from 'zod';
import { ACTIONS } from '../../security/policy.js';
import { route, type Route } from './router.js';
import { sendJson } from './respond.js';

const schemaOf = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });

/**
 * The REST API as data: the route table (with the same zod schemas that validate requests and the
 * policy entry of each route) produces the OpenAPI document, so the two cannot drift apart.
 */
export function buildOpenApi(routes: readonly Route[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of routes) {
    if (op.internal) continue;
    const scope = ACTIONS[op.action].scope;
    const pathParams = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const queryParams = op.query
      ? Object.entries((schemaOf(op.query) as { properties?: Record<string, unknown>; required?: string[] }).properties ?? {}).map(([name, schema]) => ({
          name,
          in: 'query',
          required: false,
          schema,
        }))
      : [];
    const responses: Record<string, unknown> = {
      [op.ok]: { description: 'OK' },
      '431': { description: 'Request headers over HTTP_MAX_HEADER_BYTES (headers_too_large)' },
      '500': { description: 'Internal error (logged and counted): {"detail":"internal error","error":{"code":"internal","message":"internal error","request_id"}}, no details' },
      '405': { description: 'Another method of this path (Allow lists them): {"error":{"code":"method_not_allowed"}}' },
      '421': { description: 'Host is not a name of this hub (ALLOWED_HOSTS): {"error":{"code":"misdirected_request"}}' },
    };
    if (pathParams.length > 0) responses['400'] = { description: 'Malformed percent-escape in the path: {"error":{"code":"malformed_path"}}' };
    if (op.body || op.query) responses['422'] = { description: 'Validation error: {"detail":[{"loc","msg","type"}]}; type unstorable_text for a key or string holding NUL or a lone surrogate' };
    if (op.body) {
      Object.assign(responses, {
        '400': { description: 'Malformed JSON, or a malformed percent-escape in the path (malformed_path)' },
        '413': { description: 'Body too large' },
        '415': { description: 'Body not sent as Content-Type: application/json (unsupported_media_type)' },
      });
    }
    const forbidden = ['key lacks the scope', ...(ACTIONS[op.action].devices === 'device' ? ['key limited to other devices'] : []), ...(ACTIONS[op.action].devices === 'fleet' ? ['key limited to devices'] : [])];
    if (op.method !== 'GET') forbidden.push('Origin not this hub nor in CORS_ORIGINS (origin_not_allowed)');
    if (scope) Object.assign(responses, { '401': { description: 'No or invalid API key' }, '429': { description: 'Rate limited (Retry-After)' } });
    if (scope || op.method !== 'GET') responses['403'] = { description: forbidden.join('; ') };
    for (const [status, description] of Object.entries(op.answers)) responses[status] = { description };
    (paths[op.path] ??= {})[op.method.toLowerCase()] = {
      summary: op.summary,
      ...(scope ? { security: [{ apiKey: [] }, { bearer: [] }], 'x-scope': scope, 'x-action': op.action } : { security: [] }),
      parameters: [...pathParams, ...queryParams],
      ...(op.body ? { requestBody: { required: !op.optionalBody, content: { 'application/json': { schema: schemaOf(op.body) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Vigil', version, description: 'Real-time IoT monitoring hub. The WebSocket protocol is in docs/websocket-protocol.md.' },
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key, or a JWT of your own app when JWT_HS256_SECRET or JWT_JWKS_URL is set (docs/security.md)' },
      },
    },
    paths,
  };
}

/** GET /openapi.json, built from the rest of the table (the API page at /docs renders it). */
export function openApiRoute(routes: readonly Route[], version: string): Route {
  const document = buildOpenApi(routes, version);
  return route({ method: 'GET', path: '/openapi.json', summary: 'This document', action: 'public', device: 'none', ok: '200', handle: (res) => sendJson(res, '200 OK', document) });
}
