import { z } from 'zod';
import { createKeyBody } from './admin-routes.js';
import { commandBody, commandsQuery } from './command-routes.js';
import type { Guard } from './guard.js';
import { ackBody, alertsQuery, healthDevicesQuery } from './health-routes.js';
import { devicesQuery, statusBody } from './ingest-routes.js';
import { batchBody, deviceSettingsBody, historyQuery, metricsQuery, summaryQuery, uptimeQuery } from './status-routes.js';
import type { TemplatedApp } from '../uws.js';
import { sendJson, writeCommonHeaders } from './respond.js';

interface Operation {
  readonly method: 'get' | 'post' | 'put' | 'delete';
  readonly path: string;
  readonly summary: string;
  readonly scope: 'read' | 'ingest' | 'command' | 'admin' | null;
  readonly query?: z.ZodObject;
  readonly body?: z.ZodType;
  readonly ok: string;
}

/**
 * The REST API as data: the same zod schemas that validate requests produce the OpenAPI document,
 * so the two cannot drift apart.
 */
const OPERATIONS: readonly Operation[] = [
  { method: 'get', path: '/healthz', summary: 'Process alive', scope: null, ok: '200' },
  { method: 'get', path: '/readyz', summary: 'Broker, storage and presence reachable (503 names the failing part)', scope: null, ok: '200' },
  { method: 'get', path: '/health', summary: 'Health check of the earlier REST service: status, database, version, timestamp', scope: null, ok: '200' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', scope: 'read', ok: '200' },
  { method: 'post', path: '/status', summary: 'HTTP ingest of a device status (same pipeline as MQTT telemetry)', scope: 'ingest', body: statusBody, ok: '200' },
  { method: 'get', path: '/status/summary', summary: 'A page of devices in id order (limit, default 500, ≤ HTTP_MAX_PAGE_ITEMS; cursor = the previous next_cursor) with the fleet totals', scope: 'read', query: summaryQuery, ok: '200' },
  { method: 'post', path: '/status/batch', summary: 'Status of up to 1000 devices, presence in one round trip', scope: 'read', body: batchBody, ok: '200' },
  { method: 'get', path: '/status/{device_id}', summary: 'Latest status of a device (404 {"detail":"Device X not found"})', scope: 'read', ok: '200' },
  { method: 'get', path: '/status/{device_id}/history', summary: 'Telemetry (or ?kind=status: status changes), newest first, paged', scope: 'read', query: historyQuery, ok: '200' },
  { method: 'get', path: '/devices', summary: 'Devices, filtered by status and type, paged', scope: 'read', query: devicesQuery, ok: '200' },
  { method: 'get', path: '/devices/{device_id}', summary: 'A device: status, type, name, timeouts', scope: 'read', ok: '200' },
  { method: 'put', path: '/devices/{device_id}', summary: 'Create or update a device: type, name, metadata, offline_timeout_s', scope: 'admin', body: deviceSettingsBody, ok: '200' },
  { method: 'delete', path: '/devices/{device_id}', summary: 'Forget a device (its history stays until retention)', scope: 'admin', ok: '200' },
  { method: 'get', path: '/devices/{device_id}/metrics', summary: 'avg/min/max per minute or hour bucket, for charts (range ≤ MAX_QUERY_RANGE_DAYS, else 422 range_too_large)', scope: 'read', query: metricsQuery, ok: '200' },
  { method: 'get', path: '/devices/{device_id}/metrics/summary', summary: 'Rolling metrics: recent and last 24 h', scope: 'read', ok: '200' },
  { method: 'get', path: '/devices/{device_id}/uptime', summary: 'Online share of a window, from the status history (window ≤ MAX_QUERY_RANGE_DAYS)', scope: 'read', query: uptimeQuery, ok: '200' },
  { method: 'get', path: '/devices/{device_id}/health', summary: 'Health score, components and 24 h trend', scope: 'read', ok: '200' },
  { method: 'get', path: '/health/devices', summary: 'Fleet health: distribution and worst devices', scope: 'read', query: healthDevicesQuery, ok: '200' },
  { method: 'get', path: '/alerts', summary: 'Alerts, newest first, filtered by state, device and severity', scope: 'read', query: alertsQuery, ok: '200' },
  { method: 'post', path: '/alerts/{alert_id}/ack', summary: 'Acknowledge an alert', scope: 'command', body: ackBody, ok: '200' },
  { method: 'post', path: '/devices/{device_id}/commands', summary: 'Send a command (202 with command_id; Idempotency-Key header honoured)', scope: 'command', body: commandBody, ok: '202' },
  { method: 'get', path: '/devices/{device_id}/commands', summary: 'Commands of a device, newest first', scope: 'read', query: commandsQuery, ok: '200' },
  { method: 'post', path: '/admin/keys', summary: 'Create an API key (shown once; stored hashed)', scope: 'admin', body: createKeyBody, ok: '201' },
  { method: 'get', path: '/admin/keys', summary: 'List API keys (never the secrets)', scope: 'admin', ok: '200' },
  { method: 'delete', path: '/admin/keys/{key_id}', summary: 'Revoke an API key', scope: 'admin', ok: '200' },
  { method: 'post', path: '/ws-token', summary: 'A 60-second token for a browser WebSocket (?token=)', scope: 'read', ok: '200' },
];

const schemaOf = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });

export function buildOpenApi(version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
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
      '500': { description: 'Internal error (logged and counted): {"detail":"internal error","error":{"code":"internal","message":"internal error","request_id"}}, no details' },
    };
    if (op.body || op.query) responses['422'] = { description: 'Validation error: {"detail":[{"loc","msg","type"}]}' };
    if (op.body) Object.assign(responses, { '400': { description: 'Malformed JSON' }, '413': { description: 'Body too large' } });
    if (op.scope) Object.assign(responses, { '401': { description: 'No or invalid API key' }, '403': { description: 'Key lacks the scope' }, '429': { description: 'Rate limited (Retry-After)' } });
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      ...(op.scope ? { security: [{ apiKey: [] }, { bearer: [] }], 'x-scope': op.scope } : { security: [] }),
      parameters: [...pathParams, ...queryParams],
      ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(op.body) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Vigil', version, description: 'Real-time IoT monitoring hub. The WebSocket protocol is in docs/websocket-protocol.md.' },
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
    },
    paths,
  };
}

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Vigil API</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#111}
h2{margin-top:2rem}code,pre{background:#f3f3f3;border-radius:4px;padding:.1rem .3rem}pre{padding:.6rem;overflow:auto}
.m{display:inline-block;min-width:4.5rem;font-weight:700}.s{color:#555}</style></head>
<body><h1>Vigil REST API</h1><p>From <a href="/openapi.json">/openapi.json</a>. Authenticate with <code>X-API-Key</code> or <code>Authorization: Bearer</code>.</p>
<main id="ops">Loading…</main><script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{const main=document.getElementById('ops');main.textContent='';
for(const [path,ops] of Object.entries(doc.paths))for(const [method,op] of Object.entries(ops)){
const s=document.createElement('section');const h=document.createElement('h2');const m=document.createElement('span');m.className='m';m.textContent=method.toUpperCase();
const c=document.createElement('code');c.textContent=path;h.append(m,c);const p=document.createElement('p');p.textContent=op.summary+(op['x-scope']?' — scope: '+op['x-scope']:'');
s.append(h,p);if(op.requestBody){const pre=document.createElement('pre');pre.textContent=JSON.stringify(op.requestBody.content['application/json'].schema,null,2);s.append(pre)}
main.append(s)}});</script></body></html>`;

/** GET /openapi.json and a page that renders it at /docs (no external scripts). */
export function attachOpenApi(app: TemplatedApp, version: string, guard: Guard): void {
  const document = buildOpenApi(version);
  app.get('/openapi.json', guard(null, (res) => sendJson(res, '200 OK', document)));
  app.get('/docs', guard(null, (res) => {
    res.writeStatus('200 OK').writeHeader('content-type', 'text/html; charset=utf-8');
    writeCommonHeaders(res);
    res.end(PAGE);
  }));
}
