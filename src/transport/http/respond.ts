import type { z } from 'zod';
import type { HttpResponse } from '../uws.js';

/** Headers every response of a request carries (request id, security headers, CORS), set by the guard. */
const commonHeaders = new WeakMap<HttpResponse, readonly [string, string][]>();

export function setCommonHeaders(res: HttpResponse, headers: readonly [string, string][]): void {
  commonHeaders.set(res, headers);
}

export function writeCommonHeaders(res: HttpResponse): void {
  for (const [name, value] of commonHeaders.get(res) ?? []) res.writeHeader(name, value);
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
    (error: unknown) => {
      if (!aborted.value) {
        res.cork(() => sendJson(res, '500 Internal Server Error', { detail: 'internal error', error: { code: 'internal', message: (error as Error).message } }));
      }
    },
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
