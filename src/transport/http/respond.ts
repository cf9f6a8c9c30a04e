import type { z } from 'zod';
import type { Refusal } from '../../hub/device-registry.js';
import type { Faults } from '../../errors/boundary.js';
import type { HttpResponse } from '../uws.js';

/** What the guard sets for each request: where its faults go and the id that ties a 500 to its log line. */
export interface RequestFaults {
  readonly requestId: string;
  readonly faults: Faults;
}

interface RequestCommon {
  readonly headers: readonly [string, string][];
  readonly faults: RequestFaults;
}

/** Headers every response of a request carries (request id, security headers, CORS), set by the guard. */
const common = new WeakMap<HttpResponse, RequestCommon>();

export function setCommonHeaders(res: HttpResponse, headers: readonly [string, string][], faults: RequestFaults): void {
  common.set(res, { headers, faults });
}

export function writeCommonHeaders(res: HttpResponse): void {
  for (const [name, value] of common.get(res)?.headers ?? []) res.writeHeader(name, value);
}

/** The body of every 500: no driver message, no stack, only the id to find the logged fault by. */
export function internalErrorBody(requestId: string | null): unknown {
  return { detail: 'internal error', error: { code: 'internal', message: 'internal error', request_id: requestId } };
}

/**
 * The HTTP error boundary of a request's handler: the fault is logged with the request id and counted
 * (`vigil_internal_errors_total{entry="http"}`), and the client gets a 500 without internals.
 */
export function failRequest(res: HttpResponse, error: unknown, aborted: { value: boolean }): void {
  const context = common.get(res)?.faults;
  context?.faults.report('http', error, { request_id: context.requestId });
  if (!aborted.value) res.cork(() => sendJson(res, '500 Internal Server Error', internalErrorBody(context?.requestId ?? null)));
}

export function sendJson(res: HttpResponse, status: string, body: unknown, headers: Record<string, string> = {}): void {
  res.writeStatus(status).writeHeader('content-type', 'application/json');
  writeCommonHeaders(res);
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
  res.end(JSON.stringify(body));
}

/** uWS needs onAborted before any async work; the flag tells the callback not to touch `res`. */
export function watchAbort(res: HttpResponse): { value: boolean } {
  const aborted = { value: false };
  res.onAborted(() => {
    aborted.value = true;
  });
  return aborted;
}

/** Answers an async handler's result, corked, unless the client went away meanwhile. */
export function respondLater(
  res: HttpResponse,
  work: () => Promise<[status: string, body: unknown]>,
  aborted: { value: boolean } = watchAbort(res),
): void {
  work().then(
    ([status, body]) => {
      if (!aborted.value) res.cork(() => sendJson(res, status, body));
    },
    (error: unknown) => failRequest(res, error, aborted),
  );
}

/** zod issues in the seed API's shape: `{"detail":[{"loc":["body","battery_level"],"msg":…,"type":…}]}`. */
export function validationError(where: 'body' | 'query', error: z.ZodError): { detail: { loc: (string | number)[]; msg: string; type: string }[] } {
  return {
    detail: error.issues.map((issue) => ({
      loc: [where, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
      msg: issue.message,
      type: issue.code,
    })),
  };
}

/** 404 in the earlier service's shape: `{"detail":"Device X not found"}`. */
export function sendDeviceNotFound(res: HttpResponse, deviceId: string): void {
  sendJson(res, '404 Not Found', { detail: `Device ${deviceId.slice(0, 128)} not found` });
}

/**
 * A new device the registry refused: 503 `device_limit` when MAX_DEVICES are known, 429
 * `new_device_rate` (retry in a second) when new devices come faster than MAX_NEW_DEVICES_PER_S.
 */
export function sendDeviceRefused(res: HttpResponse, reason: Refusal): void {
  const [status, body, headers] = deviceRefusal(reason);
  sendJson(res, status, body, headers);
}

/** The same refusal as a value (status, body, headers), for an answer passed between instances. */
export function deviceRefusal(reason: Refusal): [status: string, body: unknown, headers: Record<string, string>] {
  return reason === 'device_limit'
    ? ['503 Service Unavailable', { detail: 'the hub holds MAX_DEVICES devices: no new device is registered', error: { code: 'device_limit', message: 'device limit reached' } }, {}]
    : ['429 Too Many Requests', { detail: 'new devices arrive faster than MAX_NEW_DEVICES_PER_S', error: { code: 'new_device_rate', message: 'retry later' } }, { 'retry-after': '1' }];
}

/** A query parameter refused, in the validation shape (`loc: ["query", field]`) with a code clients can test. */
export function queryError(field: string, msg: string, type: string): { detail: { loc: string[]; msg: string; type: string }[] } {
  return { detail: [{ loc: ['query', field], msg, type }] };
}

export function sendQueryError(res: HttpResponse, field: string, msg: string, type: string): void {
  sendJson(res, '422 Unprocessable Entity', queryError(field, msg, type));
}
