import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s256 } from '../../src/oauth/pkce.js';
import { OWNER_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

describe('DESIGN.md §4 lockout under concurrency', () => {
  it('41 guesses sent at once on one consent form get at most 5 password checks; the rest are 429', async () => {
    const registered = await fetch(`${server.url}/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://client.example/cb'], token_endpoint_auth_method: 'none' }),
    });
    const { client_id } = (await registered.json()) as { client_id: string };
    const query = new URLSearchParams({
      response_type: 'code',
      client_id,
      redirect_uri: 'https://client.example/cb',
      code_challenge: s256('v'.repeat(43)),
      code_challenge_method: 'S256',
    });
    const page = await fetch(`${server.url}/authorize?${query}`);
    const html = await page.text();
    const cookie = page.headers.getSetCookie()[0]!.split(';')[0]!;
    const form = (password: string) =>
      new URLSearchParams({
        request_id: /name="request_id" value="([^"]+)"/.exec(html)![1]!,
        csrf_token: /name="csrf_token" value="([^"]+)"/.exec(html)![1]!,
        password,
        decision: 'approve',
      });
    const guesses = [...Array.from({ length: 40 }, (_, i) => `wrong guess ${i}`), OWNER_PASSWORD];
    const statuses = await Promise.all(
      guesses.map(async (password) => {
        const response = await fetch(`${server.url}/authorize`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie },
          body: form(password),
        });
        await response.text();
        return response.status;
      }),
    );
    const checked = statuses.filter((s) => s !== 429);
    expect(checked.length).toBeLessThanOrEqual(5);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(36);
  });
});

describe('DESIGN.md §3: limits from the config', () => {
  it('limits.loginFailures and limits.register set in the config are the ones enforced', async () => {
    const strict = await startTestServer({ config: { limits: { loginFailures: { limit: 2, window: '1h' }, register: { limit: 3, window: '1h' } } } });
    try {
      const register = () =>
        fetch(`${strict.url}/register`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ redirect_uris: ['https://client.example/cb'], token_endpoint_auth_method: 'none' }),
        });
      const first = await register();
      const { client_id } = (await first.json()) as { client_id: string };
      expect([(await register()).status, (await register()).status, (await register()).status]).toEqual([201, 201, 429]);

      const attempt = async (password: string) => {
        const query = new URLSearchParams({
          response_type: 'code',
          client_id,
          redirect_uri: 'https://client.example/cb',
          code_challenge: s256('v'.repeat(43)),
          code_challenge_method: 'S256',
        });
        const page = await fetch(`${strict.url}/authorize?${query}`);
        const html = await page.text();
        const response = await fetch(`${strict.url}/authorize`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: page.headers.getSetCookie()[0]!.split(';')[0]! },
          body: new URLSearchParams({
            request_id: /name="request_id" value="([^"]+)"/.exec(html)![1]!,
            csrf_token: /name="csrf_token" value="([^"]+)"/.exec(html)![1]!,
            password,
            decision: 'approve',
          }),
        });
        return { status: response.status, text: await response.text() };
      };
      expect((await attempt('wrong one')).status).toBe(401);
      const locked = await attempt('wrong two');
      expect(locked.status).toBe(429);
      expect(locked.text).toContain('cupcake-mcp unlock');
      expect((await attempt(OWNER_PASSWORD)).status).toBe(429);
    } finally {
      await strict.close();
    }
  });
});
