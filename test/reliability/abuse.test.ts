import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PendingAuthorizations, type AuthorizationRequest } from '../../src/oauth/authorization.js';
import { DEFAULT_LIMITS } from '../../src/server/limits.js';
import { AddressWindows } from '../../src/server/middleware/rate-limit.js';
import { DEFAULT_TIMEOUTS } from '../../src/server/start.js';
import { mintToken } from '../helpers/tokens.js';
import { ensureFirstPartyClient } from '../../src/oauth/first-party.js';
import { SseReader } from '../helpers/sse.js';
import { waitFor } from '../helpers/wait.js';
import { CLAUDE_REDIRECT, runFlow } from '../helpers/oauth-flow.js';
import { startTestServer, type TestServerOptions } from '../helpers/server.js';
import { burst, from } from '../helpers/burst.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function start(options: TestServerOptions = {}): Promise<Server> {
  const server = await startTestServer(options);
  servers.push(server);
  return server;
}

describe('rate limits per address: 429 with Retry-After (issue 9)', () => {
  // Behind a trusted proxy the address is X-Forwarded-For: one test server plays many clients.
  const proxied = { config: { trustProxy: true } };

  it(`POST /register: ${DEFAULT_LIMITS.register.limit} per hour, then 429; another address is not affected`, async () => {
    const server = await start(proxied);
    const register = (address: string) =>
      fetch(`${server.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...from(address) },
        body: JSON.stringify({ redirect_uris: [CLAUDE_REDIRECT] }),
      });
    const statuses = await burst(DEFAULT_LIMITS.register.limit, () => register('203.0.113.7'));
    expect(new Set(statuses)).toEqual(new Set([201]));
    const refused = await register('203.0.113.7');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(3_500);
    expect(await refused.json()).toMatchObject({ error: 'too_many_requests' });
    expect((await register('198.51.100.9')).status).toBe(201);
  });

  it('an IPv6 client counts per /64: rotating through its own addresses does not escape the limit', async () => {
    const server = await start({ ...proxied, limits: { register: { limit: 3, windowMs: 3_600_000 } } });
    const register = (address: string) =>
      fetch(`${server.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...from(address) },
        body: JSON.stringify({ redirect_uris: [CLAUDE_REDIRECT] }),
      });
    for (let i = 1; i <= 3; i++) expect((await register(`2001:db8:1:2::${i}`)).status).toBe(201);
    expect((await register('2001:db8:1:2:ffff::99')).status).toBe(429);
    expect((await register('2001:db8:1:3::1')).status).toBe(201);
  });

  it(`POST /token: ${DEFAULT_LIMITS.token.limit} per hour, then 429`, async () => {
    const server = await start(proxied);
    const token = (address: string) =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...from(address) },
        body: 'grant_type=authorization_code&client_id=nobody',
      });
    const statuses = await burst(DEFAULT_LIMITS.token.limit, () => token('203.0.113.8'));
    expect(new Set(statuses)).toEqual(new Set([401]));
    const refused = await token('203.0.113.8');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await token('198.51.100.10')).status).toBe(401);
  });

  it(`POST /authorize: ${DEFAULT_LIMITS.authorizeForm.limit} per 15 minutes, then 429; GET /authorize: ${DEFAULT_LIMITS.authorizePage.limit}`, async () => {
    const server = await start(proxied);
    const post = (address: string) =>
      fetch(`${server.url}/authorize`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...from(address) },
        body: 'request_id=x&csrf_token=y&decision=approve&password=z',
      });
    const statuses = await burst(DEFAULT_LIMITS.authorizeForm.limit, () => post('203.0.113.9'));
    expect(new Set(statuses)).toEqual(new Set([400]));
    const refused = await post('203.0.113.9');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await post('198.51.100.11')).status).toBe(400);

    const page = (address: string) => fetch(`${server.url}/authorize?client_id=unknown`, { headers: from(address) });
    expect(new Set(await burst(DEFAULT_LIMITS.authorizePage.limit, () => page('203.0.113.10')))).toEqual(new Set([400]));
    const refusedPage = await page('203.0.113.10');
    expect(refusedPage.status).toBe(429);
    expect(refusedPage.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it(
    `unknown or malformed bearer tokens: ${DEFAULT_LIMITS.failedBearer.limit} per 15 ` +
      `minutes, then 429; a valid token from that address still works; the log is not flooded`,
    async () => {
      const server = await start(proxied);
      const { token } = await mintToken(server.store, { baseUrl: server.url, resource: server.url });
      const guess = (address: string, value: string) => fetch(`${server.url}/tools`, { headers: { authorization: `Bearer ${value}`, ...from(address) } });
      const guesses = await burst(DEFAULT_LIMITS.failedBearer.limit, (i) => guess('203.0.113.11', i % 2 ? `mcp_${'0'.repeat(31)}${i % 10}` : 'garbage'));
      expect(new Set(guesses)).toEqual(new Set([401]));
      const refused = await burst(40, () => guess('203.0.113.11', `mcp_${'1'.repeat(32)}`));
      expect(new Set(refused)).toEqual(new Set([429]));
      const one = await guess('203.0.113.11', 'garbage');
      expect(one.headers.get('retry-after')).toMatch(/^\d+$/);
      // The owner's client behind the same address is not locked out, nor is another address.
      expect((await guess('203.0.113.11', token)).status).toBe(200);
      expect((await guess('198.51.100.12', 'garbage')).status).toBe(401);
      await server.events.flush();
      const rejected = (await server.events.readLast(1_000, { types: ['token.rejected'] })).filter((e) => e.ip === '203.0.113.11');
      // Once per reason per window (malformed, unknown), and once when the address passed the limit.
      expect(rejected.map((e) => (e.detail as { reason: string }).reason).sort()).toEqual([
        'malformed',
        'too many invalid tokens from this address',
        'unknown',
      ]);
    },
  );
});

describe('the limits never block the normal ChatGPT and Claude flows (issue 9)', () => {
  it('a busy day from one shared egress address: 30 connectors set up, used, re-authorized with stale tokens, and not one 429', async () => {
    const server = await start();
    const base = server.url;
    const statuses: number[] = [];
    const record = async (response: Response) => {
      statuses.push(response.status);
      await response.arrayBuffer();
      return response;
    };
    const tokens: string[] = [];
    for (let i = 0; i < 30; i++) {
      const claude = i % 2 === 1;
      // What a hosted client does before it has a token: probe the resource and discovery.
      await record(await fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }));
      await record(await fetch(`${base}/sse`));
      for (const path of [
        '/.well-known/oauth-protected-resource/mcp',
        '/.well-known/oauth-authorization-server',
        '/.well-known/openid-configuration',
        '/.well-known/oauth-authorization-server/mcp',
      ]) {
        await record(await fetch(`${base}${path}`));
      }
      const flow = await runFlow(base, claude ? { redirectUri: CLAUDE_REDIRECT, authMethod: 'client_secret_post', clientName: 'Claude' } : {});
      statuses.push(...flow.statuses);
      expect(flow.accessToken, `flow ${i}: ${flow.statuses.join(' ')}`).toBeDefined();
      tokens.push(flow.accessToken!);
      // It uses the connector: a session with a few calls, and the SSE stream.
      const auth = { authorization: `Bearer ${flow.accessToken}` };
      const init = await record(
        await fetch(`${base}/mcp`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 0,
            method: 'initialize',
            params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
          }),
        }),
      );
      const session = {
        ...auth,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': init.headers.get('mcp-session-id')!,
      };
      for (let call = 0; call < 5; call++) {
        await record(
          await fetch(`${base}/mcp`, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', id: call + 1, method: 'tools/list' }) }),
        );
      }
      await record(await fetch(`${base}/tools`, { headers: auth }));
    }
    // The owner revokes half of them; those clients keep trying their stale token before re-authorizing.
    await server.store.revokeAccessTokens({ all: true }, Date.now());
    for (const token of tokens) {
      for (let retry = 0; retry < 3; retry++)
        await record(
          await fetch(`${base}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' }),
        );
    }
    for (let i = 0; i < 10; i++) {
      const flow = await runFlow(base);
      statuses.push(...flow.statuses);
      expect(flow.accessToken).toBeDefined();
    }
    expect(statuses.length).toBeGreaterThan(600);
    expect(statuses.filter((s) => s === 429)).toEqual([]);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
  });
});

describe('slow clients do not exhaust the server (issue 9)', () => {
  it('serve uses header and request timeouts checked every 2 s, and no socket idle timeout', async () => {
    const server = await start();
    expect(DEFAULT_TIMEOUTS).toEqual({ headersMs: 15_000, requestMs: 30_000, checkEveryMs: 2_000 });
    expect(server.running.server.headersTimeout).toBe(15_000);
    expect(server.running.server.requestTimeout).toBe(30_000);
    // A socket timeout would cut an idle SSE stream or a long tool call.
    expect(server.running.server.timeout).toBe(0);
  });

  it('slowloris: 150 connections trickling headers or bodies are cut at the timeouts while normal requests and a streaming SSE session carry on', async () => {
    const server = await start({ timeouts: { headersMs: 1_000, requestMs: 2_000, checkEveryMs: 200 } });
    const port = Number(new URL(server.url).port);
    const { token } = await mintToken(server.store, { baseUrl: server.url, resource: server.url });
    const auth = { authorization: `Bearer ${token}` };

    const sse = await fetch(`${server.url}/sse`, { headers: { ...auth, accept: 'text/event-stream' } });
    const stream = new SseReader(sse);
    const endpoint = (await stream.next()).data;

    const sockets: Array<{ socket: Socket; closedAt?: number; answer: string }> = [];
    for (let i = 0; i < 150; i++) {
      const socket = connect(port, '127.0.0.1');
      const entry: { socket: Socket; closedAt?: number; answer: string } = { socket, answer: '' };
      sockets.push(entry);
      socket.on('data', (d) => (entry.answer += d.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => (entry.closedAt = Date.now()));
      const headersOnly = i % 2 === 0;
      // Host names the server (a loopback bind refuses other names before reading a body: DNS rebinding).
      socket.write(
        headersOnly
          ? `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`
          : `POST /token HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\ngrant_type`,
      );
      const drip = setInterval(() => {
        if (socket.destroyed) return clearInterval(drip);
        socket.write(headersOnly ? `X-Drip-${i}: a\r\n` : 'a');
      }, 150);
      socket.on('close', () => clearInterval(drip));
    }

    // Meanwhile the server answers everyone else, including a whole flow.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await runFlow(server.url)).accessToken).toBeDefined();

    // Each slow connection is cut by the server's timeouts (408), not left to hang.
    await waitFor(() => sockets.every((s) => s.closedAt !== undefined), { timeoutMs: 20_000, what: 'every slow connection to be cut' });
    expect(sockets.filter((s) => s.answer.startsWith('HTTP/1.1 408')).length).toBeGreaterThan(140);

    // The SSE stream outlived the request timeout and still carries replies.
    const reply = fetch(`${server.url}${endpoint}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect((await reply).status).toBe(202);
    expect(JSON.parse((await stream.next()).data)).toMatchObject({ id: 1, result: {} });
  });
});

describe('what one client can make the server hold is capped (issue 9)', () => {
  it(`SSE sessions: ${DEFAULT_LIMITS.sessionsPerClient} per client by default; the next one closes the least recently used`, async () => {
    const server = await start();
    const { token } = await mintToken(server.store, { baseUrl: server.url, resource: `${server.url}/sse` });
    const open = async () => {
      const response = await fetch(`${server.url}/sse`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(200);
      const reader = new SseReader(response);
      await reader.next();
      return reader;
    };
    // The oldest first, then the rest of the allowance side by side, then one more.
    const readers = [await open()];
    readers.push(...(await Promise.all(Array.from({ length: DEFAULT_LIMITS.sessionsPerClient - 1 }, open))));
    expect(server.app.mcp.sessions.size).toBe(DEFAULT_LIMITS.sessionsPerClient);
    await new Promise((resolve) => setTimeout(resolve, 10));
    readers.push(await open());
    await readers[0]!.closed;
    expect(server.app.mcp.sessions.size).toBe(DEFAULT_LIMITS.sessionsPerClient);
    await Promise.all(readers.slice(1).map((reader) => expect(reader.next(50)).rejects.toThrow(/no SSE event/)));
  });

  it('the cap closes the least recently used sessions of that client only, on both transports, logged as "session limit"', async () => {
    const server = await start({ limits: { sessionsPerClient: 3 } });
    const mine = await mintToken(server.store, { baseUrl: server.url, resource: server.url });
    const other = await mintToken(server.store, { baseUrl: server.url, resource: server.url });
    const openSse = async (token: string) => {
      const reader = new SseReader(await fetch(`${server.url}/sse`, { headers: { authorization: `Bearer ${token}` } }));
      return { reader, endpoint: (await reader.next()).data };
    };
    const pause = () => new Promise((resolve) => setTimeout(resolve, 15));
    const theirs = await openSse(other.token);
    const first = await openSse(mine.token);
    await pause();
    const second = await openSse(mine.token);
    await pause();
    const third = await openSse(mine.token);
    await pause();
    // Using the first makes the second the least recently used.
    const ping = (s: { endpoint: string }) =>
      fetch(`${server.url}${s.endpoint}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${mine.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      });
    expect((await ping(first)).status).toBe(202);
    await pause();
    const init = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mine.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
      }),
    });
    expect(init.status).toBe(200);
    await second.reader.closed;
    expect((await ping(second)).status).toBe(404);
    expect((await ping(first)).status).toBe(202);
    expect((await ping(third)).status).toBe(202);
    await expect(theirs.reader.next(50)).rejects.toThrow(/no SSE event/);
    await server.events.flush();
    const closed = await server.events.readLast(10, { types: ['session.closed'] });
    expect(closed.map((e) => (e.detail as { reason: string }).reason)).toEqual(['session limit']);
  });

  it("personal access tokens of the built-in client each have a session budget of their own (one script cannot close another's sessions)", async () => {
    const server = await start({ limits: { sessionsPerClient: 2 } });
    const builtIn = await ensureFirstPartyClient(server.app.context, {}, 'serve');
    const first = await mintToken(server.store, { baseUrl: server.url, resource: server.url, clientId: builtIn.clientId });
    const second = await mintToken(server.store, { baseUrl: server.url, resource: server.url, clientId: builtIn.clientId });
    const open = async (token: string) => {
      const reader = new SseReader(await fetch(`${server.url}/sse`, { headers: { authorization: `Bearer ${token}` } }));
      await reader.next();
      return reader;
    };
    const firstScript = [await open(first.token), await open(first.token)];
    const secondScript = [await open(second.token), await open(second.token)];
    expect(server.app.mcp.sessions.size).toBe(4);
    await Promise.all([...firstScript, ...secondScript].map((reader) => expect(reader.next(50)).rejects.toThrow(/no SSE event/)));
    // A third session of the second token closes that token's oldest only.
    await open(second.token);
    await secondScript[0]!.closed;
    expect(server.app.mcp.sessions.size).toBe(4);
  });

  it('a spray of client addresses (IPv6 gives plenty) does not grow a limiter without bound; a fresh window is kept', () => {
    let now = 0;
    const windows = new AddressWindows({ limit: 5, windowMs: 60_000 }, { now: () => now });
    for (let i = 0; i < 100_000; i++) windows.hit(`2001:db8::${i.toString(16)}`);
    expect(windows.size).toBeLessThanOrEqual(20_000);
    // The newest addresses are still counted: a flood cannot wash out its own recent window.
    for (let i = 0; i < 5; i++) windows.hit('2001:db8::1869f');
    expect(windows.hit('2001:db8::1869f').retryAfter).toBeGreaterThan(0);
    now += 61_000;
    expect(windows.hit('2001:db8::1869f').retryAfter).toBe(0);
  });

  it('pending consent forms are capped at 10,000: a flood evicts the oldest, never grows memory without bound', () => {
    const clock = { now: () => 1_000 };
    const pending = new PendingAuthorizations(clock, 300_000);
    const request = {} as AuthorizationRequest;
    const entries = Array.from({ length: 10_050 }, () => pending.create(request, 'b'.repeat(43)));
    const present = entries.filter((e) => pending.find(e.id, e.csrfToken, e.browserBinding) !== undefined);
    expect(present).toHaveLength(10_000);
    expect(pending.find(entries[0]!.id, entries[0]!.csrfToken, 'b'.repeat(43))).toBeUndefined();
    expect(pending.find(entries.at(-1)!.id, entries.at(-1)!.csrfToken, 'b'.repeat(43))).toBeDefined();
  });
});
