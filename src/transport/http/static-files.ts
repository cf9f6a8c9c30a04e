import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpResponse } from '../uws.js';
import { route, type Route } from './router.js';
import { writeCommonHeaders } from './respond.js';

const PUBLIC = fileURLToPath(new URL('../../../public/', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
/** Pages served under a path of their own rather than their file name. */
const PAGES: Record<string, string> = { 'index.html': '/', 'docs.html': '/docs' };

/**
 * Libraries the dashboard loads, served from the installed npm packages (exact versions in
 * package.json), so `npm ci && npm start` serves them with no build or copy step.
 */
const VENDOR: [path: string, module: string][] = [
  ['/vendor/uplot.min.js', 'uplot/dist/uPlot.iife.min.js'],
  ['/vendor/uplot.min.css', 'uplot/dist/uPlot.min.css'],
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

/** Every file of public/ with a known type: a new module of the dashboard is served without a list to update. */
function publicFiles(): [path: string, file: string, type: string][] {
  return readdirSync(PUBLIC)
    .filter((file) => TYPES[extname(file)] !== undefined)
    .sort()
    .map((file) => [PAGES[file] ?? `/${file}`, `${PUBLIC}${file}`, TYPES[extname(file)]!]);
}

function vendorFiles(): [path: string, file: string, type: string][] {
  const require = createRequire(import.meta.url);
  return VENDOR.map(([path, module]) => [path, require.resolve(module), TYPES[extname(module)]!]);
}

/** The dashboard and the API page: files read once at start and served from memory. Data needs the API key. */
export function dashboardRoutes(): Route[] {
  return [...publicFiles(), ...vendorFiles()].map(([path, file, type]) => {
    const body = readFileSync(file);
    return route({ method: 'GET', path, summary: `The page file ${path}`, action: 'public', device: 'none', ok: '200', internal: path !== '/docs', handle: (res) => sendPage(res, type, body) });
  });
}
