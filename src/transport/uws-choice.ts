import { HUB_MIN_NODE_MAJOR, NODE_MAJOR_BY_ABI, type UwsBuild } from './uws-builds.js';

/** What decides whether a native binary loads: no I/O here, src/transport/uws.ts reads it. */
export interface UwsHost {
  readonly nodeVersion: string;
  readonly platform: string;
  readonly arch: string;
  /** `process.versions.modules`. */
  readonly abi: number;
  /** The glibc version on Linux; null on Linux with another C library (musl) and on other systems. */
  readonly glibc: string | null;
}

export interface FittingBuild {
  readonly build: UwsBuild;
  /** The binary's path relative to the package's root. */
  readonly binary: string;
}

export interface UwsChoice {
  /** Builds with a binary for this host, most preferred first. */
  readonly fitting: readonly FittingBuild[];
  /** Why each other build does not fit. */
  readonly rejected: readonly { readonly build: UwsBuild; readonly reasons: readonly string[] }[];
}

/** Compares dotted version numbers ("2.36" < "2.38" < "2.100"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function nodeMajors(abis: readonly number[]): number[] {
  return abis.map((abi) => NODE_MAJOR_BY_ABI[abi]).filter((m): m is number => m !== undefined && m >= HUB_MIN_NODE_MAJOR);
}

function nodeName(abi: number): string {
  const major = NODE_MAJOR_BY_ABI[abi];
  return major === undefined ? `Node ABI ${abi}` : `Node ${major} (ABI ${abi})`;
}

function orList(items: readonly (string | number)[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

function libcName(host: UwsHost): string {
  if (host.platform !== 'linux') return '';
  return host.glibc === null ? ', a C library other than glibc (musl?)' : `, glibc ${host.glibc}`;
}

function libcProblem(host: UwsHost, build: UwsBuild): string | null {
  if (host.platform !== 'linux') return null;
  if (host.glibc === null) return `needs glibc ≥ ${build.glibcMin}; this system's C library is not glibc`;
  if (compareVersions(host.glibc, build.glibcMin) < 0) return `needs glibc ≥ ${build.glibcMin}`;
  return null;
}

/** Which of the candidates (in order of preference) has a binary this host can load. */
export function chooseUwsBuild(host: UwsHost, candidates: readonly UwsBuild[]): UwsChoice {
  const fitting: FittingBuild[] = [];
  const rejected: { build: UwsBuild; reasons: string[] }[] = [];
  const target = `${host.platform}_${host.arch}`;
  for (const build of candidates) {
    const reasons: string[] = [];
    if (!build.targets.includes(target)) reasons.push(`no binary for ${host.platform} ${host.arch}`);
    else {
      const libc = libcProblem(host, build);
      if (libc !== null) reasons.push(libc);
      if (!build.abis.includes(host.abi)) reasons.push(`no binary for ${nodeName(host.abi)}; it has binaries for Node ${orList(nodeMajors(build.abis))}`);
    }
    if (reasons.length === 0) fitting.push({ build, binary: `${build.binaryDir}/uws_${target}_${host.abi}.node` });
    else rejected.push({ build, reasons });
  }
  return { fitting, rejected };
}

/**
 * The start-up error when no build loads: this host, why each build does not, and what to install.
 * `loadErrors` holds, by dependency, the error of a fitting binary that still failed to load.
 */
export function noUwsBuildMessage(host: UwsHost, candidates: readonly UwsBuild[], loadErrors: ReadonlyMap<string, string>): string {
  const { rejected } = chooseUwsBuild(host, candidates);
  const target = `${host.platform}_${host.arch}`;
  const lines = [`no native uWebSockets.js build loads on Node ${host.nodeVersion} (ABI ${host.abi}), ${host.platform} ${host.arch}${libcName(host)}:`];
  for (const [dependency, error] of loadErrors) lines.push(`  ${dependency}: its binary failed to load: ${error}`);
  for (const { build, reasons } of rejected) lines.push(`  ${build.dependency} (${build.upstream}): ${reasons.join('; ')}`);

  const options = new Set<string>();
  if (loadErrors.size > 0) options.add('a clean install of the dependencies (npm ci)');
  for (const build of candidates) {
    if (!build.targets.includes(target)) continue;
    const majors = orList(nodeMajors(build.abis));
    const libc = libcProblem(host, build);
    if (libc === null) options.add(`Node ${majors} (runs ${build.dependency} ${build.upstream} here)`);
    else if (host.glibc === null) options.add(`a glibc-based system or image (e.g. node:24-trixie-slim instead of Alpine) with Node ${majors}`);
    else options.add(`glibc ≥ ${build.glibcMin} (Debian 13, Ubuntu 24.04 or newer) with Node ${majors}`);
  }
  if (options.size === 0) {
    const targets = [...new Set(candidates.flatMap((b) => b.targets))].map((t) => t.replace('_', ' '));
    options.add(`one of the platforms with a build: ${targets.join(', ')}`);
  }
  lines.push(`Install ${options.size > 1 ? 'one of: ' : ''}${[...options].join('; or ')}.`);
  lines.push('Vigil does not run on the slow `ws` fallback. Supported platforms: README.md#supported-platforms.');
  return lines.join('\n');
}
