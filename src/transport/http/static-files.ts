import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TemplatedApp } from '../uws.js';
import type { Guard } from './guard.js';
import { writeCommonHeaders } from './respond.js';

const PUBLIC = fileURLToPath(new URL('../../../public/', import.meta.url));
const FILES: [path: string, file: string, type: string][] = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/app.css', 'app.css', 'text/css; charset=utf-8'],
];

/** The dashboard: three files read once at start and served from memory. Data needs the API key. */
export function attachDashboard(app: TemplatedApp, guard: Guard): void {
  for (const [path, file, type] of FILES) {
    const body = readFileSync(`${PUBLIC}${file}`);
    app.get(path, guard(null, (res) => {
      res.writeStatus('200 OK').writeHeader('content-type', type);
      writeCommonHeaders(res);
      res.end(body);
    }));
  }
}
