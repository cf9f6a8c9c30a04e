import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HttpResponse } from '../uws.js';
import { route, type Route } from './router.js';
import { writeCommonHeaders } from './respond.js';

const PUBLIC = fileURLToPath(new URL('../../../public/', import.meta.url));
const FILES: [path: string, file: string, type: string][] = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/app.css', 'app.css', 'text/css; charset=utf-8'],
  ['/docs', 'docs.html', 'text/html; charset=utf-8'],
  ['/docs.js', 'docs.js', 'text/javascript; charset=utf-8'],
  ['/docs.css', 'docs.css', 'text/css; charset=utf-8'],
  // The browser client (an ES module): pages of this hub import it; others may copy it.
  ['/vigil-client.js', 'vigil-client.js', 'text/javascript; charset=utf-8'],
];

/**
 * The pages load only their own files (no inline script or style), talk only to this hub (its
 * REST API and /ws: 'self' covers ws: and wss: of the same host in CSP Level 3), and draw inline
 * SVG. frame-ancestors replaces X-Frame-Options for browsers that know it.
 */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Answers a file of the dashboard or the API page with its type and the page policy. */
export function sendPage(res: HttpResponse, type: string, body: Buffer | string): void {
  res.writeStatus('200 OK').writeHeader('content-type', type).writeHeader('content-security-policy', PAGE_CSP);
  writeCommonHeaders(res);
  res.end(body);
}

/** The dashboard and the API page: files read once at start and served from memory. Data needs the API key. */
export function dashboardRoutes(): Route[] {
  return FILES.map(([path, file, type]) => {
    const body = readFileSync(`${PUBLIC}${file}`);
    return route({ method: 'GET', path, summary: `The page file ${file}`, action: 'public', device: 'none', ok: '200', internal: path !== '/docs', handle: (res) => sendPage(res, type, body) });
  });
}
