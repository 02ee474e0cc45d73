import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertBuilt, ROOT } from '../helpers/cli.js';

/** The bench still works end to end against `cupcake-mcp serve` (its timings are not asserted: a test is no benchmark). */
describe('npm run bench -- --quick', () => {
  it('runs every figure of DESIGN.md §8 against its peers and writes bench/results/quick.json', async () => {
    assertBuilt();
    const output = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/run.ts'), '--quick'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (chunk) => (text += chunk));
      child.stderr.on('data', (chunk) => (text += chunk));
      child.on('exit', (code) => resolve({ code, text }));
    });
    expect(output.code, output.text).toBe(0);
    for (const figure of [
      'P1 tools/list',
      'P1 tools/call',
      'P2 auth cost',
      'P3 SSE',
      'P4 issue token',
      'events tail',
      'P5 cupcake-mcp --help',
      'P5 cupcake-mcp clients list',
      'P6 register',
      'P8 tools/list req/s on Redis',
      'P8 token issue',
    ]) {
      expect(output.text).toContain(figure);
    }
    const latest = join(ROOT, 'bench/results/quick.json');
    expect(existsSync(latest)).toBe(true);
    const { rows } = JSON.parse(readFileSync(latest, 'utf8')) as { rows: Array<{ figure: string; cupcake: number; peer: number | null }> };
    expect(rows.length).toBeGreaterThanOrEqual(13);
    // Every load figure measured something real: requests answered, with zero errors noted.
    for (const row of rows.filter((r) => r.figure.startsWith('P1') && r.figure.includes('req/s'))) {
      expect(row.cupcake).toBeGreaterThan(0);
      expect(row.peer).toBeGreaterThan(0);
    }
    expect(output.text).toMatch(/errors cupcake 0, app 0, SDK 0/);
    // Several servers (P8: two serve processes and a redis-server), an upstream process each and the conformance suite: minutes on a busy 2-core machine.
  }, 300_000);
});
