import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-escapes-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const ESC = '\u001b';

describe('terminal escapes in CLI output', () => {
  it('a field written by an unauthenticated request (ESC[8m in /oauth/callback?error=) is printed by events tail as a visible escape, never raw', async () => {
    const dir = await tmp();
    const init = await runCli(['init', '--yes', '--password-stdin'], { cwd: dir, input: 'the owner password\n' });
    expect(init.code, init.stderr).toBe(0);
    const serve = await startServe(['--port', '0'], { cwd: dir });
    const base = `http://localhost:${new URL(serve.url).port}`;
    // Anyone can start the home page's test sign-in and come back with an error of their choosing.
    const start = await fetch(`${base}/oauth/start`, { redirect: 'manual' });
    const cookie = start.headers.getSetCookie()[0]!.split(';')[0]!;
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const callback = await fetch(`${base}/oauth/callback?state=${state}&iss=${encodeURIComponent(base)}&error=%1B%5B8m&error_description=%1B%5D0%3Btitle%07`, {
      headers: { cookie },
    });
    expect(callback.status).toBe(200);
    expect(await serve.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const tail = await runCli(['events', 'tail', '-n', '50'], { cwd: dir, env: { FORCE_COLOR: '1' } });
    expect(tail.code, tail.stderr).toBe(0);
    expect(tail.stdout).toContain('signin.failed');
    expect(tail.stdout).toContain('\\u001b[8m');
    expect(tail.stdout).not.toContain(`${ESC}[8m`);
    expect(tail.stdout).not.toContain(`${ESC}]`);
    // --json prints the events as stored (JSON escapes them).
    const json = await runCli(['events', 'tail', '-n', '50', '--json'], { cwd: dir });
    expect(json.stdout).not.toContain(ESC);
    expect(
      json.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { detail?: { error?: string } })
        .some((e) => e.detail?.error === `${ESC}[8m`),
    ).toBe(true);
  });
});
