import type { HttpRequest } from '../uws.js';

/**
 * Bytes of a request's header names and values. uWebSockets.js 20.30 itself accepts about 128 KiB
 * of request head and closes the connection (no answer) past that or past about 48 headers, so
 * HTTP_MAX_HEADER_BYTES is enforced here, with a 431, on every route and on the WebSocket upgrade.
 */
export function requestHeaderBytes(req: HttpRequest): number {
  let bytes = 0;
  req.forEach((name, value) => {
    bytes += name.length + value.length;
  });
  return bytes;
}
