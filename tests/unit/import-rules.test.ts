import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering of src/ (docs/architecture.md): each folder may import only the folders listed for
 * it. Relative imports are read from the source text; packages and node: builtins are not limited.
 */
const SRC = join(import.meta.dirname, '../../src');
const SUPPORT = ['logger', 'metrics', 'errors', 'redact-url', 'version'];
const ALLOWED: Record<string, readonly string[]> = {
  domain: ['domain'],
  storage: ['domain', 'storage', ...SUPPORT],
  presence: ['domain', 'presence', ...SUPPORT],
  errors: ['errors', 'logger', 'metrics', 'redact-url'],
};
/** Only the composition root (app.ts, compose/, main.ts, config.ts, cli/) and the transports themselves reach transport/. */
const TRANSPORT_USERS = new Set(['app', 'main', 'compose', 'config', 'transport', 'cli']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

/** The top-level part of src/ a path is in: its first folder, or its file name without `.ts`. */
const partOf = (file: string): string => relative(SRC, file).split('/')[0]!.replace(/\.[jt]s$/, '');

function importsOf(file: string): { target: string; line: string }[] {
  const text = readFileSync(file, 'utf8');
  const found: { target: string; line: string }[] = [];
  for (const match of text.matchAll(/^(?:import|export)\b[^'"]*?from '(\.[^']+)'/gm)) {
    found.push({ target: normalize(join(dirname(file), match[1]!)), line: match[0] });
  }
  return found;
}

describe('import rules', () => {
  const files = sourceFiles(SRC);

  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it('each layer imports only what its row allows: storage and presence know the domain, not the hub', () => {
    const broken: string[] = [];
    for (const file of files) {
      const allowed = ALLOWED[partOf(file)];
      if (allowed === undefined) continue;
      for (const { target, line } of importsOf(file)) {
        if (!allowed.includes(partOf(target))) broken.push(`${relative(SRC, file)}: ${line}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('only the composition root and the transports import transport/', () => {
    const broken: string[] = [];
    for (const file of files) {
      if (TRANSPORT_USERS.has(partOf(file))) continue;
      for (const { target, line } of importsOf(file)) if (partOf(target) === 'transport') broken.push(`${relative(SRC, file)}: ${line}`);
    }
    expect(broken).toEqual([]);
  });

  it('nothing imports the composition root', () => {
    const broken = files.flatMap((file) =>
      importsOf(file)
        .filter(({ target }) => ['app', 'main', 'compose'].includes(partOf(target)) && !['app', 'main', 'compose', 'cli'].includes(partOf(file)))
        .map(({ line }) => `${relative(SRC, file)}: ${line}`),
    );
    expect(broken).toEqual([]);
  });
});
