import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { currentUwsHost, loadedUwsBuild } from '../../src/transport/uws.js';
import { NODE_MAJOR_BY_ABI, UWS_BUILDS } from '../../src/transport/uws-builds.js';
import { chooseUwsBuild, compareVersions, noUwsBuildMessage, type UwsHost } from '../../src/transport/uws-choice.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ABI_BY_MAJOR = new Map(Object.entries(NODE_MAJOR_BY_ABI).map(([abi, major]) => [major, Number(abi)]));

function host(major: number, platform = 'linux', arch = 'x64', glibc: string | null = platform === 'linux' ? '2.41' : null): UwsHost {
  return { nodeVersion: `v${major}.1.0`, platform, arch, abi: ABI_BY_MAJOR.get(major)!, glibc };
}

function chosen(h: UwsHost): string | null {
  return chooseUwsBuild(h, UWS_BUILDS).fitting[0]?.build.dependency ?? null;
}

describe('choosing the uWebSockets.js build', () => {
  it('Node 24 on glibc >= 2.38 gets v20.57, with the binary of its ABI', () => {
    const choice = chooseUwsBuild(host(24, 'linux', 'x64', '2.38'), UWS_BUILDS);
    expect(choice.fitting.map((f) => [f.build.dependency, f.binary])).toEqual([['uWebSockets.js', './uws_linux_x64_137.node']]);
  });

  it('Node 20 on Debian 12 (glibc 2.36) gets v20.30; with glibc 2.41 it prefers v20.57 and keeps v20.30 as the next try', () => {
    expect(chooseUwsBuild(host(20, 'linux', 'x64', '2.36'), UWS_BUILDS).fitting.map((f) => f.binary)).toEqual(['binaries/uws_linux_x64_115.node']);
    expect(chooseUwsBuild(host(20), UWS_BUILDS).fitting.map((f) => f.build.dependency)).toEqual(['uWebSockets.js', 'uws-v20.30']);
  });

  it('no glibc test off Linux; musl, 32-bit arm past Node 20 and Node 26 have no build', () => {
    expect(chosen(host(24, 'darwin', 'arm64'))).toBe('uWebSockets.js');
    expect(chosen(host(22, 'win32', 'x64'))).toBe('uWebSockets.js');
    expect(chosen(host(24, 'linux', 'x64', null))).toBeNull();
    expect(chosen(host(20, 'linux', 'arm'))).toBe('uws-v20.30');
    expect(chosen(host(24, 'linux', 'arm'))).toBeNull();
    expect(chosen(host(26))).toBeNull();
  });

  it('compares glibc versions numerically', () => {
    expect(compareVersions('2.36', '2.38')).toBeLessThan(0);
    expect(compareVersions('2.100', '2.38')).toBeGreaterThan(0);
    expect(compareVersions('2.38', '2.38.0')).toBe(0);
  });
});

describe('the error when no build loads', () => {
  it('names Node, the C library, why each build does not fit and what to install (Node 24 on Debian 12)', () => {
    const message = noUwsBuildMessage({ ...host(24, 'linux', 'x64', '2.36'), nodeVersion: 'v24.22.3' }, UWS_BUILDS, new Map());
    expect(message).toContain('no native uWebSockets.js build loads on Node v24.22.3 (ABI 137), linux x64, glibc 2.36:');
    expect(message).toContain('uWebSockets.js (v20.57.0): needs glibc ≥ 2.38');
    expect(message).toContain('uws-v20.30 (v20.30.0): no binary for Node 24 (ABI 137); it has binaries for Node 20');
    expect(message).toContain('glibc ≥ 2.38 (Debian 13, Ubuntu 24.04 or newer) with Node 20, 22, 24 or 25');
    expect(message).toContain('Node 20 (runs uws-v20.30 v20.30.0 here)');
    expect(message).toContain('README.md#supported-platforms');
  });

  it('on musl it asks for a glibc system; on Node 26 for a supported Node; a binary that failed to load is named with its error', () => {
    expect(noUwsBuildMessage(host(24, 'linux', 'x64', null), UWS_BUILDS, new Map())).toMatch(/C library other than glibc[\s\S]*a glibc-based system or image/);
    const node26 = noUwsBuildMessage(host(26), UWS_BUILDS, new Map());
    expect(node26).toContain('no binary for Node 26 (ABI 147)');
    expect(node26).toContain('Node 20, 22, 24 or 25 (runs uWebSockets.js v20.57.0 here)');
    const failed = noUwsBuildMessage(host(24), UWS_BUILDS, new Map([['uWebSockets.js', 'GLIBC_2.38 not found']]));
    expect(failed).toContain('uWebSockets.js: its binary failed to load: GLIBC_2.38 not found');
    expect(failed).toContain('npm ci');
  });
});

describe('the builds as installed', () => {
  it('each dependency holds exactly the binaries its entry in uws-builds.ts lists', () => {
    for (const build of UWS_BUILDS) {
      const dir = join(ROOT, 'node_modules', build.dependency, build.binaryDir);
      const files = readdirSync(dir).filter((f) => f.startsWith('uws_') && f.endsWith('.node'));
      const listed = build.targets.flatMap((t) => build.abis.map((abi) => `uws_${t}_${abi}.node`));
      expect(files.sort(), build.dependency).toEqual(listed.sort());
    }
  });

  it('every binary has the sha256 that docs/uws-binaries.sha256 records', () => {
    const lines = readFileSync(join(ROOT, 'docs/uws-binaries.sha256'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const listed = UWS_BUILDS.flatMap((b) => b.targets.flatMap((t) => b.abis.map((abi) => join(b.dependency, b.binaryDir, `uws_${t}_${abi}.node`))));
    expect(lines.map((l) => join(l.split(/\s+/)[1]!)).sort()).toEqual(listed.sort());
    for (const line of lines) {
      const [sum, file = ''] = line.split(/\s+/);
      expect(createHash('sha256').update(readFileSync(join(ROOT, 'node_modules', file))).digest('hex'), file).toBe(sum);
    }
  });

  it('this process loaded the first build that fits it', () => {
    expect(loadedUwsBuild().dependency).toBe(chosen(currentUwsHost()));
  });
});

/** README "Supported platforms": each row's Node versions, systems and C libraries, tried against the chooser. */
describe('README supported-platforms table', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('## Supported platforms')[1]?.split('\n## ')[0] ?? '';
  const rows = section
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| Node') && !line.startsWith('| ---'))
    .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));

  function systems(cell: string): { platform: string; archs: string[] }[] {
    if (cell === 'any') return [{ platform: 'linux', archs: ['x64', 'arm64'] }, { platform: 'darwin', archs: ['arm64'] }];
    const [name = '', ...rest] = cell.replace(' (32-bit)', '').split(' ');
    const platform = ({ Linux: 'linux', macOS: 'darwin', Windows: 'win32' } as Record<string, string>)[name]!;
    const archs = rest.join(' ').split(',').map((a) => a.trim()).filter(Boolean);
    return [{ platform, archs: archs.length > 0 ? archs : ['x64'] }];
  }

  function libcs(cell: string, platform: string): (string | null)[] {
    if (platform !== 'linux' || cell === '—') return [null];
    if (cell.startsWith('musl')) return [null];
    if (cell === 'any') return ['2.41', '2.28', null];
    const at = cell.match(/glibc ≥ ([\d.]+)/);
    if (at) return [at[1]!, '2.41'];
    const range = cell.match(/glibc ([\d.]+)–([\d.]+)/);
    if (range) return [range[1]!, range[2]!];
    const below = cell.match(/glibc < 2\.(\d+)/);
    if (below) return [`2.${Number(below[1]) - 1}`, '2.28'];
    throw new Error(`unreadable C library cell: ${cell}`);
  }

  it('has rows, and each row says what the loader chooses', () => {
    expect(rows.length).toBeGreaterThan(5);
    for (const [nodeCell = '', systemCell = '', libcCell = '', buildCell = ''] of rows) {
      const expected = buildCell.startsWith('none') ? null : (UWS_BUILDS.find((b) => buildCell.includes(`\`${b.dependency}\` ${b.upstream}`))?.dependency ?? 'unreadable');
      for (const major of nodeCell.split(',').map((n) => Number(n.trim()))) {
        for (const { platform, archs } of systems(systemCell)) {
          for (const arch of archs) {
            for (const glibc of libcs(libcCell, platform)) {
              expect(chosen(host(major, platform, arch, glibc)), `Node ${major}, ${platform} ${arch}, glibc ${glibc}: ${buildCell}`).toBe(expected);
            }
          }
        }
      }
    }
  });
});
