import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { ROOT } from '../helpers/cli.js';

/** ARCHITECTURE.md "Who may import whom", checked on the import lines of src/**. */
const SRC = join(ROOT, 'src');

interface ImportLine {
  file: string;
  /** The layer folder of the importing file ('cli', 'server', …, or 'index' for src/index.ts). */
  layer: string;
  specifier: string;
  /** The layer the specifier resolves to, for relative imports. */
  target: string | undefined;
  typeOnly: boolean;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? files(full) : full.endsWith('.ts') ? [full] : [];
  });
}

const layerOf = (file: string) => {
  const rel = relative(SRC, file).split(/[\\/]/);
  return rel.length === 1 ? rel[0]!.replace(/\.ts$/, '') : rel[0]!;
};

const sources = files(SRC).map((file) => ({ file, text: readFileSync(file, 'utf8') }));

const imports: ImportLine[] = sources.flatMap(({ file, text }) =>
  [...text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)].map(
    (m) => {
      const specifier = m[3] ?? m[4] ?? m[5]!;
      const target = specifier.startsWith('.') ? layerOf(resolve(dirname(file), specifier)) : undefined;
      return { file: relative(ROOT, file), layer: layerOf(file), specifier, target, typeOnly: Boolean(m[2]) };
    },
  ),
);

/** The folders of src/ and their rules below; ARCHITECTURE.md "Layout". */
const KNOWN_LAYERS = ['cli', 'config', 'doctor', 'init', 'mcp', 'oauth', 'outbound', 'server', 'shared', 'store'];

const offending = (predicate: (i: ImportLine) => boolean) => imports.filter(predicate).map((i) => `${i.file}: ${i.specifier}`);

describe('ARCHITECTURE.md: who may import whom', () => {
  it('the scan sees the code base (it would pass vacuously otherwise)', () => {
    expect(imports.length).toBeGreaterThan(200);
    expect(new Set(imports.map((i) => i.layer))).toEqual(
      new Set(['cli', 'config', 'doctor', 'index', 'init', 'mcp', 'oauth', 'outbound', 'server', 'shared', 'store']),
    );
  });

  it('every folder of src/ is a layer this test knows (a new one needs its rule here and in ARCHITECTURE.md)', () => {
    const folders = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory());
    expect(new Set(folders)).toEqual(new Set(KNOWN_LAYERS));
  });

  it('nothing imports cli but cli itself', () => {
    expect(offending((i) => i.target === 'cli' && i.layer !== 'cli')).toEqual([]);
  });

  it('server imports only oauth, mcp, outbound, store, config, shared (and itself)', () => {
    expect(
      offending(
        (i) => i.layer === 'server' && i.target !== undefined && !['server', 'oauth', 'mcp', 'outbound', 'store', 'config', 'shared'].includes(i.target),
      ),
    ).toEqual([]);
  });

  it('outbound imports only shared: it fetches, the rules about what it fetched live in oauth', () => {
    expect(offending((i) => i.layer === 'outbound' && i.target !== undefined && !['outbound', 'shared'].includes(i.target))).toEqual([]);
    expect(offending((i) => i.layer === 'outbound' && /^(koa|@koa\/|lowdb|chalk)/.test(i.specifier))).toEqual([]);
  });

  it('only outbound opens https connections to the internet (mcp/ reaches upstream MCP servers through the SDK)', () => {
    expect(offending((i) => /^(node:)?https$/.test(i.specifier) && i.layer !== 'outbound')).toEqual([]);
  });

  it('oauth is free of HTTP: no koa, lowdb, chalk or node:http; store only for types', () => {
    expect(offending((i) => i.layer === 'oauth' && /^(koa|@koa\/|lowdb|chalk|node:http|http$|express)/.test(i.specifier))).toEqual([]);
    expect(offending((i) => i.layer === 'oauth' && i.target !== undefined && !['oauth', 'store', 'shared'].includes(i.target))).toEqual([]);
    expect(offending((i) => i.layer === 'oauth' && i.target === 'store' && !i.typeOnly)).toEqual([]);
  });

  it('store imports only shared; only the file store imports lowdb, only store/redis/ the Redis client', () => {
    expect(offending((i) => i.layer === 'store' && i.target !== undefined && !['store', 'shared'].includes(i.target))).toEqual([]);
    expect(offending((i) => i.specifier === 'lowdb' && !i.file.endsWith('store/file-store.ts'))).toEqual([]);
    expect(offending((i) => /^(@redis\/|redis$|ioredis$)/.test(i.specifier) && !i.file.includes('store/redis/'))).toEqual([]);
  });

  it('mcp, config, init, doctor and shared never reach into server or cli', () => {
    expect(
      offending(
        (i) =>
          ['mcp', 'config', 'init', 'doctor', 'shared'].includes(i.layer) && (i.target === 'server' || i.target === 'cli' || /^(koa|@koa\/)/.test(i.specifier)),
      ),
    ).toEqual([]);
  });

  it('only cli reads process.env, calls process.exit or writes to the console', () => {
    const found = sources
      .filter(({ file }) => layerOf(file) !== 'cli')
      .flatMap(({ file, text }) =>
        [...text.matchAll(/process\.env|process\.exit|console\.(log|error|warn|info)/g)].map((m) => `${relative(ROOT, file)}: ${m[0]}`),
      );
    expect(found).toEqual([]);
  });
});
