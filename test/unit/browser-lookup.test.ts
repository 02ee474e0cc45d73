import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureBrowser, findBrowser, installPlan, WHAT_TO_INSTALL } from '../helpers/browser.js';
import { ROOT } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-browser-lookup-');

/** How the browser tests find a browser on a fresh machine (test/setup/browser.ts). */
describe('browser lookup for test/browser/', () => {
  it('CHROMIUM_PATH, then CHROME_PATH, then the usual install locations', async () => {
    const dir = await tmp();
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await writeFile(a, '');
    await writeFile(b, '');
    expect(findBrowser({ CHROMIUM_PATH: a, CHROME_PATH: b }, [])).toEqual({ path: a });
    expect(findBrowser({ CHROME_PATH: b }, [a])).toEqual({ path: b });
    expect(findBrowser({}, [join(dir, 'missing'), a])).toEqual({ path: a });
  });

  it('a variable pointing at a missing path is reported as such, and nothing is installed for it', () => {
    const ran: string[][] = [];
    const found = ensureBrowser({ env: { CHROMIUM_PATH: '/nonexistent/chromium' }, candidates: [], plan: [['apt-get', 'update']], run: (c) => ran.push(c) });
    expect(found).toEqual({ problem: 'CHROMIUM_PATH=/nonexistent/chromium does not exist: point it at a Chromium or Chrome binary, or unset it' });
    expect(ran).toEqual([]);
  });

  it('no browser and no way to install one: one line that says what to install', () => {
    const found = ensureBrowser({ env: {}, candidates: ['/nonexistent/chromium'], plan: undefined });
    expect(found).toEqual({ problem: WHAT_TO_INSTALL });
    expect(WHAT_TO_INSTALL).not.toContain('\n');
    expect(WHAT_TO_INSTALL).toContain('apt-get install chromium');
  });

  it('on a Debian-like machine as root, Debian’s chromium is installed (apt-get update first) and then found', async () => {
    const dir = await tmp();
    const installed = join(dir, 'chromium');
    const plan = installPlan({ uid: 0, debianLike: true, hasAptGet: true });
    expect(plan).toEqual([
      ['apt-get', 'update'],
      ['apt-get', 'install', '-y', '--no-install-recommends', 'chromium'],
    ]);
    const ran: string[][] = [];
    const found = ensureBrowser({
      env: {},
      candidates: [installed],
      plan,
      run: (command) => {
        ran.push(command);
        if (command.includes('install')) writeFileSync(installed, '');
      },
    });
    expect(ran).toEqual(plan);
    expect(found).toEqual({ path: installed });
    expect(installPlan({ uid: 1000, debianLike: true, hasAptGet: true })).toBeUndefined();
    expect(installPlan({ uid: 0, debianLike: false, hasAptGet: false })).toBeUndefined();
  });

  it('a browser test run with CHROMIUM_PATH at a missing path fails with that one line', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', 'test/browser/sign-in-test.test.ts'], {
      cwd: ROOT,
      env: { ...process.env, CHROMIUM_PATH: '/nonexistent/chromium', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    expect(output).toContain('Error: CHROMIUM_PATH=/nonexistent/chromium does not exist');
  }, 60_000);
});
