import { createRequire } from 'node:module';
import type * as Uws from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';

/**
 * Loads the native uWebSockets.js binary itself. The package's own entry point silently falls
 * back to a `ws`-based imitation when the binary does not match this Node; Vigil refuses that,
 * since the fallback has none of the performance the hub is built on.
 */
export function loadUws(): typeof Uws {
  const require = createRequire(import.meta.url);
  const binary = `uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    return require(binary) as typeof Uws;
  } catch (error) {
    throw new Error(
      `the native uWebSockets.js binary did not load (${binary}): ${(error as Error).message}. ` +
        'Vigil needs it and will not run on the slow fallback: use Node 20 on linux/darwin x64 or arm64 with glibc >= 2.36.',
    );
  }
}
