import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseReader } from '../helpers/sse.js';
import { mintToken } from '../helpers/tokens.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const json = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const initialize = (id: number | string = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '1' } },
});

async function openMcpSession(token: string): Promise<string> {
  const response = await fetch(`${server.url}/mcp`, { method: 'POST', headers: { ...json, ...bearer(token) }, body: JSON.stringify(initialize()) });
  expect(response.status).toBe(200);
  await response.text();
  const sessionId = response.headers.get('mcp-session-id');
  expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
  return sessionId!;
}

async function openSse(token: string): Promise<{ reader: SseReader; endpoint: string; abort: AbortController }> {
  const abort = new AbortController();
  const response = await fetch(`${server.url}/sse`, { headers: { Accept: 'text/event-stream', ...bearer(token) }, signal: abort.signal });
  expect(response.status).toBe(200);
  const reader = new SseReader(response);
  const first = await reader.next();
  expect(first.event).toBe('endpoint');
  return { reader, endpoint: first.data, abort };
}

async function eventTypes(): Promise<Array<{ type: string; detail?: unknown; client_id?: string }>> {
  await server.events.flush();
  return server.events.readLast(500);
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - started;
}

describe('every protected request is authenticated (RFC 6750, RFC 9728 §5.1)', () => {
  const endpoints = [
    { name: 'POST /mcp', path: '/mcp', method: 'POST', body: JSON.stringify(initialize()), prm: '/.well-known/oauth-protected-resource/mcp' },
    { name: 'GET /sse', path: '/sse', method: 'GET', prm: '/.well-known/oauth-protected-resource/sse' },
    {
      name: 'POST /messages',
      path: '/messages/?session_id=00000000-0000-0000-0000-000000000000',
      method: 'POST',
      body: '{}',
      prm: '/.well-known/oauth-protected-resource/sse',
    },
    { name: 'GET /tools', path: '/tools', method: 'GET', prm: '/.well-known/oauth-protected-resource' },
    { name: 'POST /tools/whoami', path: '/tools/whoami', method: 'POST', body: '{}', prm: '/.well-known/oauth-protected-resource' },
  ];
  const cases: Array<{ name: string; token: () => Promise<string | undefined>; reason: string }> = [
    { name: 'no token', token: async () => undefined, reason: 'missing' },
    { name: 'a garbage token', token: async () => 'not-a-token', reason: 'malformed' },
    { name: 'an unknown token', token: async () => `mcp_${'0'.repeat(32)}`, reason: 'unknown' },
    {
      name: 'an expired token',
      token: async () => (await mintToken(server.store, { baseUrl: server.url, expiresAt: Date.now() - 1000 })).token,
      reason: 'expired',
    },
    { name: 'a revoked token', token: async () => (await mintToken(server.store, { baseUrl: server.url, revoked: true })).token, reason: 'revoked' },
    {
      name: 'a token for another server (audience)',
      token: async () => (await mintToken(server.store, { baseUrl: server.url, resource: 'https://other.example.com/mcp' })).token,
      reason: 'wrong audience',
    },
  ];
  for (const endpoint of endpoints) {
    for (const c of cases) {
      it(`${endpoint.name} with ${c.name} → 401 with the resource_metadata challenge`, async () => {
        const token = await c.token();
        const response = await fetch(`${server.url}${endpoint.path}`, {
          method: endpoint.method,
          headers: { ...json, ...(token ? bearer(token) : {}) },
          ...(endpoint.body ? { body: endpoint.body } : {}),
        });
        expect(response.status).toBe(401);
        const challenge = response.headers.get('www-authenticate') ?? '';
        expect(challenge).toContain(`Bearer resource_metadata="${server.url}${endpoint.prm}"`);
        expect(challenge).toContain('scope="mcp"');
        if (token === undefined) expect(challenge).not.toContain('error=');
        else expect(challenge).toContain('error="invalid_token"');
        await response.text();
        const rejected = (await eventTypes()).filter((e) => e.type === 'token.rejected');
        if (c.reason === 'missing') expect(rejected.some((e) => (e.detail as { reason: string }).reason === 'missing')).toBe(true);
        // Logged once per address and reason per window (SECURITY.md): an earlier case may have logged it.
        else expect(rejected.some((e) => (e.detail as { reason: string }).reason === c.reason)).toBe(true);
      });
    }
  }

  it('requests without a token (the first step of discovery) are logged once per address per minute', async () => {
    const count = async () => (await eventTypes()).filter((e) => e.type === 'token.rejected' && (e.detail as { reason: string }).reason === 'missing').length;
    const before = await count();
    for (let i = 0; i < 50; i++) expect((await fetch(`${server.url}/mcp`, { method: 'POST', headers: json, body: '{}' })).status).toBe(401);
    expect((await count()) - before).toBeLessThanOrEqual(1);
  });

  it('RFC 6750 §2: a token in the query string is not accepted', async () => {
    const { token } = await mintToken(server.store, { baseUrl: server.url });
    const response = await fetch(`${server.url}/tools?access_token=${token}`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).not.toContain('error=');
  });
});

describe('the seed flow, phase 5: legacy SSE by hand', () => {
  it('GET /sse gives the endpoint event with session_id=; each POST /messages is 202 and its reply arrives on the stream', async () => {
    const { token } = await mintToken(server.store, { baseUrl: server.url, resource: `${server.url}/sse` });
    const abort = new AbortController();
    const response = await fetch(`${server.url}/sse`, { headers: bearer(token), signal: abort.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('cache-control')).toContain('no-cache');
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    const reader = new SseReader(response);
    const endpoint = await reader.next();
    expect(endpoint.event).toBe('endpoint');
    expect(endpoint.data).toMatch(/^\/messages\/\?session_id=[0-9a-f-]{36}$/);

    const post = (message: unknown) =>
      fetch(`${server.url}${endpoint.data}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...bearer(token) },
        body: JSON.stringify(message),
      });

    expect((await post(initialize(1))).status).toBe(202);
    const init = JSON.parse((await reader.next()).data);
    expect(init).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'cupcake' }, capabilities: { tools: {} } } });
    expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    expect((await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' })).status).toBe(202);
    const list = await reader.next();
    expect(list.event).toBe('message');
    expect(JSON.parse(list.data)).toMatchObject({ id: 2, result: { tools: [expect.objectContaining({ name: 'whoami' })] } });
    expect((await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {} } })).status).toBe(202);
    const call = JSON.parse((await reader.next()).data);
    expect(call.id).toBe(3);
    expect(call.result.structuredContent).toMatchObject({ server: 'cupcake', scopes: ['mcp'] });
    abort.abort();
  });

  it('accepts /messages without the slash and sessionId= as the parameter name', async () => {
    const { token } = await mintToken(server.store, { baseUrl: server.url });
    const { reader, endpoint, abort } = await openSse(token);
    const id = new URL(endpoint, server.url).searchParams.get('session_id');
    const response = await fetch(`${server.url}/messages?sessionId=${id}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...bearer(token) },
      body: JSON.stringify(initialize(7)),
    });
    expect(response.status).toBe(202);
    expect(JSON.parse((await reader.next()).data).id).toBe(7);
    abort.abort();
  });

  it('POST /sse → 405 so that clients trying Streamable HTTP first fall back', async () => {
    const response = await fetch(`${server.url}/sse`, { method: 'POST', headers: json, body: JSON.stringify(initialize()) });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET');
  });
});

describe('sessions', () => {
  it('an unknown session id → 404 on /mcp and on /messages', async () => {
    const { token } = await mintToken(server.store, { baseUrl: server.url });
    const mcp = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...json, ...bearer(token), 'Mcp-Session-Id': 'c0ffee00-0000-4000-8000-000000000000' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(mcp.status).toBe(404);
    const messages = await fetch(`${server.url}/messages/?session_id=c0ffee00-0000-4000-8000-000000000000`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...bearer(token) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(messages.status).toBe(404);
  });

  it('a request without a session that is not initialize → 400', async () => {
    const { token } = await mintToken(server.store, { baseUrl: server.url });
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...json, ...bearer(token) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(400);
  });

  it('MCP security best practices: another client’s token on an open session is refused and logged', async () => {
    const owner = await mintToken(server.store, { baseUrl: server.url });
    const intruder = await mintToken(server.store, { baseUrl: server.url });
    const sessionId = await openMcpSession(owner.token);
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...json, ...bearer(intruder.token), 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect([403, 404]).toContain(response.status);

    const { endpoint, abort } = await openSse(owner.token);
    const sse = await fetch(`${server.url}${endpoint}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...bearer(intruder.token) },
      body: JSON.stringify(initialize()),
    });
    expect([403, 404]).toContain(sse.status);
    abort.abort();

    const rejected = (await eventTypes()).filter((e) => e.type === 'token.rejected' && e.client_id === intruder.record.clientId);
    expect(rejected.map((e) => (e.detail as { reason: string }).reason)).toEqual(['wrong session owner', 'wrong session owner']);

    // The owner's session is untouched.
    const ok = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...json, ...bearer(owner.token), 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
    });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('whoami');
  });

  it('a token of the same client but another grant cannot ride a session', async () => {
    const owner = await mintToken(server.store, { baseUrl: server.url });
    const sibling = await mintToken(server.store, { baseUrl: server.url, clientId: owner.record.clientId });
    const sessionId = await openMcpSession(owner.token);
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...json, ...bearer(sibling.token), 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect([403, 404]).toContain(response.status);
  });

  it('DELETE /mcp ends the session; the next request on it is 404', async () => {
    const { token } = await mintToken(server.store, { baseUrl: server.url });
    const sessionId = await openMcpSession(token);
    const del = await fetch(`${server.url}/mcp`, {
      method: 'DELETE',
      headers: { ...bearer(token), 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-06-18' },
    });
    expect(del.status).toBe(200);
    const after = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...json, ...bearer(token), 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(after.status).toBe(404);
    const closed = (await eventTypes()).filter((e) => e.type === 'session.closed' && (e.detail as { session_id: string }).session_id === sessionId);
    expect(closed).toHaveLength(1);
  });

  it('a token revoked by the CLI (another OS process) closes its open SSE stream and /mcp session within 2 s', async () => {
    assertBuilt();
    const { token, record } = await mintToken(server.store, { baseUrl: server.url });
    const sessionId = await openMcpSession(token);
    const { reader, abort } = await openSse(token);

    const result = await runCli(['tokens', 'revoke', record.id], { cwd: server.dataDir, env: { CUPCAKE_DATA_DIR: server.dataDir } });
    expect(result.code, result.stderr).toBe(0);
    const revokedAt = Date.now();

    await Promise.race([reader.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('SSE stream still open 2 s after revocation')), 2_000))]);
    await waitFor(() => !server.app.mcp.sessions.get(sessionId, 'streamable-http'), 2_000 - (Date.now() - revokedAt));
    const after = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...json, ...bearer(token), 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(after.status).toBe(401);
    const closed = (await eventTypes()).filter(
      (e) => e.type === 'session.closed' && (e.detail as { reason: string }).reason === 'token revoked' && e.client_id === record.clientId,
    );
    expect(closed).toHaveLength(2);
    abort.abort();
  });

  it('revoking through /revoke (this process) closes the streams too', async () => {
    // mintToken's client is public: RFC 7009 §2.1 lets it authenticate at /revoke with its client_id.
    const { token, record } = await mintToken(server.store, { baseUrl: server.url });
    const { reader } = await openSse(token);
    const revoked = await fetch(`${server.url}/revoke`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token', client_id: record.clientId }),
    });
    expect(revoked.status).toBe(200);
    await Promise.race([reader.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('stream still open')), 2_000))]);
    expect((await server.store.findAccessToken(record.tokenHash))?.revokedAt).toEqual(expect.any(Number));
  });
});

describe('CORS (DESIGN.md §4)', () => {
  for (const path of ['/mcp', '/sse', '/messages/', '/tools', '/token', '/register', '/revoke', '/.well-known/oauth-protected-resource/mcp']) {
    it(`preflight OPTIONS ${path} succeeds without a token`, async () => {
      const response = await fetch(`${server.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          Origin: 'https://chatgpt.com',
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization, content-type, mcp-session-id',
        },
      });
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      const allowed = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase();
      for (const header of ['authorization', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']) expect(allowed).toContain(header);
    });
  }

  it('exposes WWW-Authenticate and Mcp-Session-Id to browser clients', async () => {
    const response = await fetch(`${server.url}/mcp`, { method: 'POST', headers: { ...json, Origin: 'https://example.org' }, body: '{}' });
    expect(response.status).toBe(401);
    const exposed = (response.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    expect(exposed).toContain('www-authenticate');
    expect(exposed).toContain('mcp-session-id');
  });
});

describe('GET /tools and POST /tools/<name>', () => {
  it('list and call the same tools as MCP, with tool.called in the log', async () => {
    const { token, record } = await mintToken(server.store, { baseUrl: server.url });
    const list = await fetch(`${server.url}/tools`, { headers: bearer(token) });
    expect(list.status).toBe(200);
    const { tools } = (await list.json()) as { tools: Array<{ name: string; inputSchema: unknown }> };
    expect(tools.map((t) => t.name)).toContain('whoami');
    const call = await fetch(`${server.url}/tools/whoami`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...bearer(token) }, body: '{}' });
    expect(call.status).toBe(200);
    const result = (await call.json()) as { structuredContent: { client_id: string; token_id: string } };
    expect(result.structuredContent).toMatchObject({ client_id: record.clientId, token_id: record.id });
    expect(JSON.stringify(result)).not.toContain(token);
    const called = (await eventTypes()).filter((e) => e.type === 'tool.called' && e.client_id === record.clientId);
    expect(called.length).toBeGreaterThan(0);
  });

  it('an unknown tool → 404 JSON', async () => {
    const { token } = await mintToken(server.store, { baseUrl: server.url });
    const response = await fetch(`${server.url}/tools/nope`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...bearer(token) }, body: '{}' });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: 'unknown_tool' });
  });
});

describe('closed sessions release their MCP server', () => {
  it('after initialize + DELETE on /mcp and open + close on /sse, no session server still follows the tool registry', async () => {
    const before = server.app.mcp.tools.listenerCount;
    const { token } = await mintToken(server.store, { baseUrl: server.url });
    for (let i = 0; i < 5; i++) {
      const sessionId = await openMcpSession(token);
      const del = await fetch(`${server.url}/mcp`, { method: 'DELETE', headers: { ...bearer(token), 'Mcp-Session-Id': sessionId } });
      expect(del.status).toBe(200);
      const { abort, reader } = await openSse(token);
      abort.abort();
      await reader.closed;
    }
    await expect.poll(() => server.app.mcp.tools.listenerCount, { timeout: 2_000 }).toBe(before);
  });
});
