import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, initDataDir, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { runFlow } from '../helpers/oauth-flow.js';
import { OWNER_PASSWORD } from '../helpers/server.js';

const tmp = useTmpDirs('cupcake-unlock-');
killChildrenAfterEach();
beforeAll(assertBuilt);

/** Five wrong passwords from this (loopback) address: the owner's own typos on a local setup. */
async function lockOut(base: string): Promise<string> {
  let last = '';
  for (let i = 0; i < 5; i++) {
    const flow = await runFlow(base, { password: `typo number ${i}` });
    last = String(flow.statuses.at(-1));
  }
  return last;
}

/** The consent form as a locked-out owner sees it. */
async function lockedPage(base: string): Promise<{ status: number; text: string }> {
  const reg = (await (
    await fetch(`${base}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'] }),
    })
  ).json()) as { client_id: string };
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: reg.client_id,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });
  const page = await fetch(`${base}/authorize?${query}`);
  const html = await page.text();
  const answer = await fetch(`${base}/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: page.headers.getSetCookie()[0]!.split(';')[0]! },
    body: new URLSearchParams({
      request_id: /name="request_id" value="([^"]+)"/.exec(html)![1]!,
      csrf_token: /name="csrf_token" value="([^"]+)"/.exec(html)![1]!,
      password: OWNER_PASSWORD,
      decision: 'approve',
    }),
  });
  return { status: answer.status, text: await answer.text() };
}

describe('getting back in after a consent lockout', () => {
  it('the locked page says how to get back in, and "cupcake-mcp unlock" lifts the lock of the running server', async () => {
    const dir = await tmp();
    await initDataDir(dir);
    const serve = await startServe(['--port', '0'], { cwd: dir });
    expect(await lockOut(serve.url)).toBe('429');
    const locked = await lockedPage(serve.url);
    expect(locked.status).toBe(429);
    expect(locked.text).toContain('cupcake-mcp unlock');

    const unlock = await runCli(['unlock'], { cwd: dir });
    expect(unlock.code, unlock.stderr).toBe(0);
    expect(unlock.stdout).toContain('consent form unlocked');
    expect(unlock.stdout).toContain(`the running server (pid ${serve.child.pid})`);
    // The running server reads the store's change within its 1 s.
    const flow = await waitFor(
      async () => {
        const f = await runFlow(serve.url);
        return f.accessToken ? f : undefined;
      },
      { timeoutMs: 10_000, what: 'a sign-in with the right password after unlock' },
    );
    expect(flow.statuses).toEqual([201, 200, 302, 200]);
    expect((await serve.stop()).code).toBe(0);
  });

  it('changing the password with passwd lifts the lock too', async () => {
    const dir = await tmp();
    await initDataDir(dir);
    const serve = await startServe(['--port', '0'], { cwd: dir });
    expect(await lockOut(serve.url)).toBe('429');
    const next = 'a brand new owner password';
    expect((await runCli(['passwd', '--password-stdin'], { cwd: dir, input: next })).code).toBe(0);
    const flow = await waitFor(
      async () => {
        const f = await runFlow(serve.url, { password: next });
        return f.accessToken ? f : undefined;
      },
      { timeoutMs: 10_000, what: 'a sign-in with the new password' },
    );
    expect(flow.accessToken).toBeDefined();
    expect((await serve.stop()).code).toBe(0);
  });
});
