import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as Uws from 'uWebSockets.js';
import { UWS_BUILDS } from './uws-builds.js';
import { chooseUwsBuild, noUwsBuildMessage, type UwsHost } from './uws-choice.js';

/*
 * Typed against v20.57's index.d.ts (the `uWebSockets.js` dependency). v20.30's differs only where the
 * hub keeps to what both do: `closeOnBackpressureLimit` is a number there (the hub passes `true`,
 * which both read as on), `getQuery`/`getParameter` may return undefined in v20.57 (the hub always
 * defaults them with `?? ''`); `sendFirstFragment`/`sendFragment`/`sendLastFragment`/`_cfg` exist only
 * in v20.30 and `dropped`/`filter`/`close` only in v20.57, and the hub uses none of them.
 */
export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';

/** The build loaded, for the start-up log. */
export interface LoadedUwsBuild {
  readonly dependency: string;
  /** The installed package's own name and version (an npm alias hides them in package.json). */
  readonly package: string;
  readonly version: string;
  readonly binary: string;
}

interface ReportHeader {
  readonly header?: { readonly glibcVersionRuntime?: string };
}

/** No build fits this host: the message says why and what to install. */
export class UwsUnavailableError extends Error {
  override readonly name = 'UwsUnavailableError';
}

let loaded: { readonly uws: typeof Uws; readonly build: LoadedUwsBuild } | null = null;

/** This process's Node, platform and C library (glibc from the diagnostic report; musl has none). */
export function currentUwsHost(): UwsHost {
  const glibc = process.platform === 'linux' ? ((process.report.getReport() as ReportHeader).header?.glibcVersionRuntime ?? null) : null;
  return { nodeVersion: process.version, platform: process.platform, arch: process.arch, abi: Number(process.versions.modules), glibc };
}

interface InstalledPackage {
  readonly root: string;
  readonly name: string;
  readonly version: string;
}

/** The package's root and manifest: up from its entry point to its package.json (its exports may hide both). */
function installedPackage(require: NodeJS.Require, dependency: string): InstalledPackage {
  const entry = require.resolve(dependency);
  for (let dir = dirname(entry); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; version: string };
      return { root: dir, name, version };
    }
    if (dirname(dir) === dir) throw new Error(`no package.json above ${entry}`);
  }
}

/**
 * Loads the native uWebSockets.js binary of the first build (src/transport/uws-builds.ts) that fits
 * this Node ABI, platform and C library, once per process. The binary is required directly: the
 * packages' own entry points fall back silently to a `ws`-based imitation (or throw on other Node
 * versions), and Vigil refuses that, since the fallback has none of the performance the hub is built on.
 */
export function loadUws(): typeof Uws {
  return (loaded ??= loadFirstFitting()).uws;
}

/** Which build loadUws() loaded (loading it if it has not yet). */
export function loadedUwsBuild(): LoadedUwsBuild {
  return (loaded ??= loadFirstFitting()).build;
}

/**
 * v20.57 refuses request headers over UWS_HTTP_MAX_HEADERS_SIZE (read when its binary loads; 4 KiB by
 * default) with its own HTML 431 before the hub sees the request. Raised past the largest
 * HTTP_MAX_HEADER_BYTES the configuration accepts, so the hub's guard answers with its documented JSON
 * error and counts it, as it does on v20.30 (which has no such setting). A value set by the user stays.
 */
const UWS_HEADERS_CEILING_BYTES = 128 * 1024;

function loadFirstFitting(): { uws: typeof Uws; build: LoadedUwsBuild } {
  process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(UWS_HEADERS_CEILING_BYTES);
  const require = createRequire(import.meta.url);
  const host = currentUwsHost();
  const errors = new Map<string, string>();
  for (const { build, binary } of chooseUwsBuild(host, UWS_BUILDS).fitting) {
    try {
      const pkg = installedPackage(require, build.dependency);
      const path = join(pkg.root, binary);
      const uws = require(path) as typeof Uws;
      return { uws, build: { dependency: build.dependency, package: pkg.name, version: pkg.version, binary: path } };
    } catch (error) {
      errors.set(build.dependency, (error as Error).message.split('\n')[0] ?? '');
    }
  }
  throw new UwsUnavailableError(noUwsBuildMessage(host, UWS_BUILDS, errors));
}
