import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EVENTS_FILE } from '../../src/store/event-log.js';
import { mintToken } from '../helpers/tokens.js';
import { runFlow } from '../helpers/oauth-flow.js';
import { startTestServer, type TestServerOptions } from '../helpers/server.js';
import { burst, from } from '../helpers/burst.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function start(options: TestServerOptions = {}): Promise<Server> {
  const server = await startTestServer({ ...options, config: { trustProxy: true, ...options.config } });
  servers.push(server);
  return server;
}

describe('an audit log that noise cannot erase (SECURITY.md)', () => {
  it('GET /oauth/callback with an unknown state: limited per address, and logged once per address per window', async () => {
    const server = await start({ limits: { signIn: { limit: 50, windowMs: 600_000 } } });
    const statuses = await burst(200, () => fetch(`${server.url}/oauth/callback?state=forged${Math.random()}`, { headers: from('203.0.113.21') }));
    expect(statuses.filter((s) => s === 400)).toHaveLength(50);
    expect(statuses.filter((s) => s === 429)).toHaveLength(150);
    await server.events.flush();
    const failed = (await server.events.readLast(10_000, { types: ['signin.failed'] })).filter((e) => e.ip === '203.0.113.21');
    expect(failed).toHaveLength(1);
  });

  it('expired and revoked bearer tokens are counted per address (then 429) and each logged once per window', async () => {
    const server = await start({ limits: { staleBearer: { limit: 30, windowMs: 900_000 } } });
    const revoked = await mintToken(server.store, { baseUrl: server.url, resource: server.url, revoked: true });
    const expired = await mintToken(server.store, { baseUrl: server.url, resource: server.url, expiresAt: Date.now() - 1_000 });
    const statuses = await burst(100, (i) =>
      fetch(`${server.url}/tools`, { headers: { authorization: `Bearer ${i % 2 ? revoked.token : expired.token}`, ...from('203.0.113.22') } }),
    );
    expect(statuses.filter((s) => s === 401)).toHaveLength(30);
    expect(statuses.filter((s) => s === 429)).toHaveLength(70);
    await server.events.flush();
    const rejected = (await server.events.readLast(10_000, { types: ['token.rejected'] })).filter((e) => e.ip === '203.0.113.22');
    // Once per token and reason, plus one line when the address passed the limit.
    expect(rejected.map((e) => (e.detail as { reason: string }).reason).sort()).toEqual(['expired', 'revoked', 'too many invalid tokens from this address']);
  });

  it('POST /token with wrong client credentials: client.authentication_failed is logged once per address and client per window', async () => {
    const server = await start();
    const basic = `Basic ${Buffer.from('no-such-client:wrong').toString('base64')}`;
    const statuses = await burst(100, () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', ...from('203.0.113.23') },
        body: 'grant_type=authorization_code&code=x&code_verifier=y',
      }),
    );
    expect(new Set(statuses)).toEqual(new Set([401]));
    await server.events.flush();
    const failed = (await server.events.readLast(10_000, { types: ['client.authentication_failed'] })).filter((e) => e.ip === '203.0.113.23');
    expect(failed).toHaveLength(1);
  });

  it('rejections from many addresses cannot rotate out the records of what was granted', async () => {
    const rotateBytes = 16 * 1024;
    const server = await start({ eventRotateBytes: rotateBytes });
    const flow = await runFlow(server.url);
    expect(flow.accessToken).toBeDefined();
    // 1,200 addresses, each refused once on three routes: far more than two rotations of noise.
    await burst(1_200, (i) => {
      const address = `10.${(i >> 8) & 255}.${i & 255}.7`;
      const path = ['/oauth/callback?state=forged', '/tools', `/authorize?client_id=${flow.clientId}&response_type=code`][i % 3]!;
      return fetch(`${server.url}${path}`, { redirect: 'manual', headers: { authorization: 'Bearer mcp_00000000000000000000000000000000', ...from(address) } });
    });
    await server.events.flush();
    const noise = await server.events.readLast(100_000, { types: ['token.rejected', 'signin.failed', 'authorization.'] });
    expect(noise.length).toBeGreaterThan(0);
    const granted = await server.events.readLast(100_000, { types: ['client.registered', 'code.issued', 'token.issued'] });
    expect(granted.map((e) => e.type).sort()).toEqual(['client.registered', 'code.issued', 'token.issued']);
    // The records live in events.jsonl itself, which the noise did not touch.
    const records = await readFile(join(server.dataDir, EVENTS_FILE), 'utf8');
    expect(records).toContain('"token.issued"');
    expect(records.length).toBeLessThan(rotateBytes);
  });
});
