import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../helpers/cli.js';

/**
 * Biome (`npm run format`) wraps code at 160 columns but leaves long strings, template literals
 * and comments as they are; this keeps those within the same width. Characters are counted as
 * code points, as the formatter counts them, not bytes ('✓' is one).
 */
const MAX = 160;
const FOLDERS = ['src', 'test', 'bench', 'bin'];
const EXTENSIONS = /\.(ts|mts|js|mjs)$/;
/** Ignored by .gitignore: installed, built or written by a run, never part of the source. */
const SKIPPED = new Set(['node_modules', 'dist', 'artifacts', 'results', 'coverage', '.scratch']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return SKIPPED.has(entry.name) ? [] : sourceFiles(full);
    return EXTENSIONS.test(entry.name) ? [full] : [];
  });
}

const files = FOLDERS.flatMap((folder) => sourceFiles(join(ROOT, folder)));

describe('line length', () => {
  it('the scan sees the source folders (it would pass vacuously otherwise)', () => {
    const seen = new Set(files.map((file) => relative(ROOT, file).split(/[\\/]/)[0]));
    expect(seen).toEqual(new Set(FOLDERS));
    expect(files.length).toBeGreaterThan(200);
  });

  it(`no line of src/, test/, bench/ or bin/ runs past ${MAX} characters (wrap long strings with + and comments over lines)`, () => {
    const tooLong = files.flatMap((file) =>
      readFileSync(file, 'utf8')
        .split(/\r?\n/)
        .flatMap((line, i) => {
          const length = [...line].length;
          return length > MAX ? [`${relative(ROOT, file)}:${i + 1}: ${length} characters`] : [];
        }),
    );
    expect(tooLong).toEqual([]);
  });
});
