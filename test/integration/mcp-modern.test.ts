import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as ClientV2, StreamableHTTPClientTransport as StreamableV2, UnauthorizedError as UnauthorizedV2 } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError as UnauthorizedV1 } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport as StreamableV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { HeadlessOAuthClientProvider } from '../helpers/oauth-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { mintToken } from '../helpers/tokens.js';

let server: TestServer;
let docsDir: string;
const warnings: string[] = [];

beforeAll(async () => {
  docsDir = await mkdtemp(join(tmpdir(), 'cupcake-docs-'));
  await writeFile(join(docsDir, 'refunds.md'), '# Refund policy\n\nCustomers may ask for a refund within 30 days.\n');
  server = await startTestServer({ docsDir });
  // The skew of real clients is logged once per client: listen to what the app logs.
  const logger = server.app.context.logger;
  const warn = logger.warn.bind(logger);
  logger.warn = (message: string) => {
    warnings.push(message);
    warn(message);
  };
});
afterAll(async () => {
  await server.close();
  await rm(docsDir, { recursive: true, force: true });
});

const MODERN = '2026-07-28';
const VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
const CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';
const envelope = (version = MODERN) => ({ [VERSION_KEY]: version, [CAPABILITIES_KEY]: {} });
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const json = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

/** A 2026-07-28 request as the spec shapes it: envelope in `_meta`, Mcp-Method (and Mcp-Name) headers matching the body. */
function modernRequest(
  method: string,
  params: Record<string, unknown> = {},
  id: number | string = 1,
  headers: Record<string, string> = {},
): { headers: Record<string, string>; body: unknown } {
  const name: Record<string, string> = typeof params.name === 'string' ? { 'Mcp-Name': params.name } : {};
  return {
    headers: { ...json, 'MCP-Protocol-Version': MODERN, 'Mcp-Method': method, ...name, ...headers },
    body: { jsonrpc: '2.0', id, method, params: { ...params, _meta: { ...envelope(), ...((params._meta as object) ?? {}) } } },
  };
}

async function post(token: string | undefined, request: { headers: Record<string, string>; body: unknown }) {
  const response = await fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: { ...request.headers, ...(token ? bearer(token) : {}) },
    body: JSON.stringify(request.body),
  });
  const text = await response.text();
  return { response, status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}

const initialize = (version = '2025-11-25', id: number | string = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

async function openLegacySession(token: string, version = '2025-11-25'): Promise<string> {
  const opened = await post(token, { headers: json, body: initialize(version) });
  expect(opened.status).toBe(200);
  expect(opened.body!.result.protocolVersion).toBe(version);
  return opened.response.headers.get('mcp-session-id')!;
}

async function token(): Promise<string> {
  return (await mintToken(server.store, { baseUrl: server.url })).token;
}

describe('SDK clients of both eras through the whole OAuth flow, at the same time', () => {
  it(
    'the v2 client in versionNegotiation auto ends on 2026-07-28 (server/discover, ' + 'no initialize) while the v1 client keeps a 2025-11-25 session',
    async () => {
      const sentV2: string[] = [];
      const recordingFetch: typeof fetch = async (input, init) => {
        if (init?.method === 'POST' && typeof init.body === 'string' && String(input).endsWith('/mcp'))
          sentV2.push((JSON.parse(init.body) as { method?: string }).method ?? '(response)');
        return fetch(input, init);
      };
      const providerV2 = new HeadlessOAuthClientProvider({ authMethod: 'none', clientName: 'SDK v2 client' });
      const providerV1 = new HeadlessOAuthClientProvider({ authMethod: 'client_secret_basic', clientName: 'SDK v1 client' });
      const makeV2 = () => new StreamableV2(new URL(`${server.url}/mcp`), { authProvider: providerV2, fetch: recordingFetch });
      const makeV1 = () => new StreamableV1(new URL(`${server.url}/mcp`), { authProvider: providerV1 });

      // Both meet the 401 challenge and run discovery → registration → consent → token, concurrently.
      const firstV2 = makeV2();
      const firstV1 = makeV1();
      await Promise.all([
        expect(new ClientV2({ name: 'v2', version: '1' }, { versionNegotiation: { mode: 'auto' } }).connect(firstV2)).rejects.toBeInstanceOf(UnauthorizedV2),
        expect(new ClientV1({ name: 'v1', version: '1' }).connect(firstV1)).rejects.toBeInstanceOf(UnauthorizedV1),
      ]);
      providerV2.takeAuthorizationCode(); // checks the state came back
      // The v2 client reads code and iss from the callback and checks iss first (RFC 9207 §2.4).
      await Promise.all([firstV2.finishAuth(providerV2.outcomes.at(-1)!.redirect.searchParams), firstV1.finishAuth(providerV1.takeAuthorizationCode())]);

      sentV2.length = 0;
      const v2 = new ClientV2({ name: 'v2', version: '1' }, { versionNegotiation: { mode: 'auto' } });
      const v1 = new ClientV1({ name: 'v1', version: '1' });
      await Promise.all([v2.connect(makeV2()), v1.connect(makeV1())]);
      try {
        expect(v2.getNegotiatedProtocolVersion()).toBe(MODERN);
        expect(v2.getProtocolEra()).toBe('modern');
        expect(sentV2[0]).toBe('server/discover');
        expect(sentV2).not.toContain('initialize');
        expect((v1.transport as StreamableV1).sessionId).toMatch(/^[0-9a-f-]{36}$/);

        const [listV2, listV1] = await Promise.all([v2.listTools(), v1.listTools()]);
        expect(listV2.tools.map((t) => t.name).sort()).toEqual(['fetch', 'search', 'whoami']);
        expect(listV1.tools.map((t) => t.name).sort()).toEqual(['fetch', 'search', 'whoami']);
        const [whoV2, whoV1] = await Promise.all([v2.callTool({ name: 'whoami', arguments: {} }), v1.callTool({ name: 'whoami', arguments: {} })]);
        expect(whoV2.structuredContent).toMatchObject({ client_id: providerV2.clientInformation()!.client_id, session_id: null });
        expect(whoV1.structuredContent).toMatchObject({
          client_id: providerV1.clientInformation()!.client_id,
          session_id: (v1.transport as StreamableV1).sessionId,
        });
        expect(sentV2).not.toContain('initialize');
      } finally {
        await Promise.all([v2.close(), v1.close()]);
      }
    },
  );

  it('MCP 2026-07-28: a subscriptions/listen stream is acknowledged first and then carries tools/list_changed', async () => {
    const t = await token();
    const v2 = new ClientV2({ name: 'v2', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await v2.connect(new StreamableV2(new URL(`${server.url}/mcp`), { requestInit: { headers: bearer(t) } }));
    const changed = new Promise<void>((resolve) => v2.setNotificationHandler('notifications/tools/list_changed', async () => resolve()));
    try {
      const subscription = await v2.listen({ toolsListChanged: true });
      expect(subscription.honoredFilter).toMatchObject({ toolsListChanged: true });
      const remove = server.app.mcp.tools.registerTool('added_later', { description: 'appears while the client listens' }, () => ({ content: [] }));
      try {
        await changed;
        expect((await v2.listTools()).tools.map((tool) => tool.name)).toContain('added_later');
      } finally {
        remove();
      }
    } finally {
      await v2.close();
    }
  });
});

describe('MCP 2026-07-28 on /mcp, raw', () => {
  it('server/discover answers the supported revisions, the capabilities and the server identity', async () => {
    const { status, body } = await post(await token(), modernRequest('server/discover'));
    expect(status).toBe(200);
    expect(body!.result.supportedVersions).toEqual([MODERN]);
    expect(body!.result.capabilities).toEqual({ tools: { listChanged: true } });
    expect(body!.result._meta['io.modelcontextprotocol/serverInfo']).toMatchObject({ name: server.config.name });
  });

  it('tools/list carries ttlMs and cacheScope (SEP-2549), and the request needs no session', async () => {
    const { status, body, response } = await post(await token(), modernRequest('tools/list'));
    expect(status).toBe(200);
    expect(response.headers.get('mcp-session-id')).toBeNull();
    expect(body!.result).toMatchObject({ resultType: 'complete', ttlMs: 0, cacheScope: 'private' });
    expect(body!.result.tools.map((t: { name: string }) => t.name).sort()).toEqual(['fetch', 'search', 'whoami']);
  });

  it('-32020: an Mcp-Method or Mcp-Name header that disagrees with the body is refused with 400 and the request id', async () => {
    const t = await token();
    const method = await post(t, modernRequest('tools/list', {}, 7, { 'Mcp-Method': 'tools/call' }));
    expect(method.status).toBe(400);
    expect(method.body).toMatchObject({ id: 7, error: { code: -32020 } });
    const name = await post(t, modernRequest('tools/call', { name: 'whoami', arguments: {} }, 'n-1', { 'Mcp-Name': 'search' }));
    expect(name.status).toBe(400);
    expect(name.body).toMatchObject({ id: 'n-1', error: { code: -32020 } });
  });

  it('-32022: a version nobody supports is refused with 400 and the supported list', async () => {
    const request = modernRequest('tools/list', { _meta: { [VERSION_KEY]: '2099-01-01' } }, 3, { 'MCP-Protocol-Version': '2099-01-01' });
    const { status, body } = await post(await token(), request);
    expect(status).toBe(400);
    expect(body).toMatchObject({ id: 3, error: { code: -32022, data: { supported: [MODERN], requested: '2099-01-01' } } });
  });

  it('a request without the _meta protocol version or client capabilities is 400 with -32602', async () => {
    const t = await token();
    const noEnvelope = await post(t, {
      headers: { ...json, 'MCP-Protocol-Version': MODERN, 'Mcp-Method': 'tools/list' },
      body: { jsonrpc: '2.0', id: 4, method: 'tools/list', params: {} },
    });
    expect(noEnvelope.status).toBe(400);
    expect(noEnvelope.body).toMatchObject({ id: 4, error: { code: -32602 } });
    const noCapabilities = await post(t, {
      headers: { ...json, 'MCP-Protocol-Version': MODERN, 'Mcp-Method': 'tools/list' },
      body: { jsonrpc: '2.0', id: 5, method: 'tools/list', params: { _meta: { [VERSION_KEY]: MODERN } } },
    });
    expect(noCapabilities.status).toBe(400);
    expect(noCapabilities.body).toMatchObject({ id: 5, error: { code: -32602 } });
  });

  it('initialize, ping and unknown methods on the 2026 wire answer 404 with -32601', async () => {
    const t = await token();
    for (const method of ['initialize', 'ping', 'no/such-method']) {
      const { status, body } = await post(t, modernRequest(method, {}, method));
      expect(status, method).toBe(404);
      expect(body, method).toMatchObject({ id: method, error: { code: -32601 } });
    }
  });

  it('405 for GET and DELETE without a session: 2026-07-28 has no stream to open or end', async () => {
    const t = await token();
    for (const method of ['GET', 'DELETE']) {
      const response = await fetch(`${server.url}/mcp`, { method, headers: { Accept: 'text/event-stream', 'MCP-Protocol-Version': MODERN, ...bearer(t) } });
      expect(response.status, method).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
      expect(await response.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
    }
  });

  it('CORS: a browser client may send the 2026-07-28 headers (preflight allows Mcp-Method and Mcp-Name)', async () => {
    const response = await fetch(`${server.url}/mcp`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://localhost:6274',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type, mcp-protocol-version, mcp-method, mcp-name',
      },
    });
    expect(response.status).toBeLessThan(300);
    const allowed = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const name of ['mcp-method', 'mcp-name', 'mcp-protocol-version']) expect(allowed).toContain(name);
  });

  it('tool calls: invalid arguments are a result with isError; an unknown tool is -32602 with its message said once', async () => {
    const t = await token();
    const invalid = await post(t, modernRequest('tools/call', { name: 'search', arguments: { query: 42 } }));
    expect(invalid.status).toBe(200);
    expect(invalid.body!.result.isError).toBe(true);
    expect(invalid.body!.result.content[0].text).toMatch(/invalid arguments for search: query/);
    const unknown = await post(t, modernRequest('tools/call', { name: 'nope', arguments: {} }, 9));
    expect(unknown.body).toMatchObject({ id: 9, error: { code: -32602, message: 'Unknown tool: nope' } });
  });
});

describe('every request of both eras is authenticated', () => {
  it('401 with the challenge on each era without a token', async () => {
    for (const request of [modernRequest('tools/list'), { headers: json, body: initialize() }]) {
      const { status, response } = await post(undefined, request);
      expect(status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain(`resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp"`);
    }
  });

  it('a revoked token is refused on the next request of either era (401 invalid_token)', async () => {
    const { token: t, record } = await mintToken(server.store, { baseUrl: server.url });
    const sessionId = await openLegacySession(t);
    expect((await post(t, modernRequest('tools/list'))).status).toBe(200);
    await server.store.revokeAccessTokens({ ids: [record.id] }, Date.now());
    const modern = await post(t, modernRequest('tools/list'));
    const legacy = await post(t, {
      headers: { ...json, 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-11-25' },
      body: { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    });
    for (const { status, response } of [modern, legacy]) {
      expect(status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });
});

describe("Claude's header skew (anthropics/claude-code#93290, OneUptime#3707)", () => {
  it('a 2026-07-28 body with MCP-Protocol-Version: 2025-11-25 is served by the body, and the skew is logged once per client', async () => {
    const { token: t, record } = await mintToken(server.store, { baseUrl: server.url });
    for (let i = 0; i < 2; i++) {
      const listed = await post(t, modernRequest('tools/list', {}, i, { 'MCP-Protocol-Version': '2025-11-25' }));
      expect(listed.status).toBe(200);
      expect(listed.body!.result).toMatchObject({ resultType: 'complete', ttlMs: 0 });
      const called = await post(t, modernRequest('tools/call', { name: 'whoami', arguments: {} }, `c${i}`, { 'MCP-Protocol-Version': '2025-11-25' }));
      expect(called.status).toBe(200);
      expect(called.body!.result.structuredContent).toMatchObject({ client_id: record.clientId });
      const discovered = await post(t, modernRequest('server/discover', {}, `d${i}`, { 'MCP-Protocol-Version': '2025-11-25' }));
      expect(discovered.status).toBe(200);
    }
    expect(warnings.filter((line) => line.includes(record.clientId))).toHaveLength(1);
  });

  it('the skew does not excuse an Mcp-Name mismatch (-32020) or a version nobody supports (-32022)', async () => {
    const t = await token();
    const mismatch = await post(
      t,
      modernRequest('tools/call', { name: 'whoami', arguments: {} }, 1, { 'MCP-Protocol-Version': '2025-11-25', 'Mcp-Name': 'search' }),
    );
    expect(mismatch.body).toMatchObject({ error: { code: -32020 } });
    const unknown = await post(t, modernRequest('tools/list', {}, 2, { 'MCP-Protocol-Version': '2024-01-01' }));
    expect(unknown.status).toBe(400);
  });

  it('on a 2025-11-25 session, a newer header is served at the session revision (2025 result shape); an unknown one is -32022', async () => {
    const { token: t, record } = await mintToken(server.store, { baseUrl: server.url });
    const sessionId = await openLegacySession(t);
    const listed = await post(t, {
      headers: { ...json, 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': MODERN },
      body: { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    });
    expect(listed.status).toBe(200);
    expect(listed.body!.result.tools.length).toBe(3);
    expect(listed.body!.result.resultType).toBeUndefined();
    const called = await post(t, {
      headers: { ...json, 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': MODERN },
      body: { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
    });
    expect(called.body!.result.structuredContent).toMatchObject({ session_id: sessionId });
    expect(warnings.filter((line) => line.includes(record.clientId))).toHaveLength(1);

    const unknown = await post(t, {
      headers: { ...json, 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '1999-01-01' },
      body: { jsonrpc: '2.0', id: 4, method: 'tools/list' },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ id: 4, error: { code: -32022 } });
  });
});

describe('the hot path answers what the SDK path answers', () => {
  const cases: Array<[string, string, Record<string, unknown>]> = [
    ['tools/list', 'tools/list', {}],
    ['tools/call whoami', 'tools/call', { name: 'whoami', arguments: {} }],
    ['tools/call search', 'tools/call', { name: 'search', arguments: { query: 'refund' } }],
    ['tools/call with invalid arguments', 'tools/call', { name: 'search', arguments: { query: 42 } }],
    ['tools/call of an unknown tool', 'tools/call', { name: 'nope', arguments: {} }],
    ['tools/call without arguments', 'tools/call', { name: 'whoami' }],
  ];
  for (const [label, method, params] of cases) {
    it(`${label}: same status and JSON-RPC body as the SDK's createMcpHandler`, async () => {
      const { token: t, record } = await mintToken(server.store, { baseUrl: server.url });
      const request = modernRequest(method, params, 11);
      const hot = await post(t, request);
      const authInfo = { token: record.id, clientId: record.clientId, scopes: record.scopes, extra: { tokenId: record.id, grantId: record.grantId } };
      const sdk = await server.app.mcp.modern.serve(new Request(`${server.url}/mcp`, { method: 'POST', headers: request.headers }), authInfo, request.body);
      expect(hot.status).toBe(sdk.status);
      expect(hot.body).toEqual(await sdk.json());
      expect(hot.response.headers.get('content-type')).toMatch(/^application\/json/);
    });
  }
});

/**
 * What the SDK's own Server (the one 2025 sessions run, from the app's factory) answers to one
 * request on an initialized 2025-11-25 connection with this caller and session id.
 */
async function sdkAnswer2025(request: unknown, authInfo: Record<string, unknown>, sessionId: string): Promise<unknown> {
  const sdkServer = server.app.mcp.createServer();
  const answers = new Map<unknown, (message: unknown) => void>();
  const transport = {
    sessionId,
    onmessage: undefined as ((message: unknown, extra?: unknown) => void) | undefined,
    async start() {},
    async close() {},
    async send(message: { id?: unknown }) {
      answers.get(message.id)?.(message);
    },
  };
  await sdkServer.connect(transport as never);
  const ask = (message: { id: unknown }) =>
    new Promise<unknown>((resolve) => {
      answers.set(message.id, resolve);
      transport.onmessage!(message, { authInfo });
    });
  await ask(initialize('2025-11-25', 'init'));
  transport.onmessage!({ jsonrpc: '2.0', method: 'notifications/initialized' }, { authInfo });
  try {
    return await ask(request as { id: unknown });
  } finally {
    await sdkServer.close();
  }
}

describe('the 2025 session hot path answers what the SDK server answers', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['tools/list', { method: 'tools/list' }],
    ['tools/call whoami', { method: 'tools/call', params: { name: 'whoami', arguments: {} } }],
    ['tools/call search', { method: 'tools/call', params: { name: 'search', arguments: { query: 'refund' } } }],
    ['tools/call with invalid arguments', { method: 'tools/call', params: { name: 'search', arguments: { query: 42 } } }],
    ['tools/call of an unknown tool', { method: 'tools/call', params: { name: 'nope', arguments: {} } }],
  ];
  for (const [label, message] of cases) {
    it(`${label}: same JSON-RPC body on the session as from the SDK's Server`, async () => {
      const { token: t, record } = await mintToken(server.store, { baseUrl: server.url });
      const sessionId = await openLegacySession(t);
      const request = { jsonrpc: '2.0', id: 21, ...message };
      const hot = await post(t, { headers: { ...json, 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-11-25' }, body: request });
      expect(`${hot.status} ${hot.response.statusText}`).toBe('200 OK');
      expect(hot.response.headers.get('mcp-session-id')).toBe(sessionId);
      const authInfo = { token: record.id, clientId: record.clientId, scopes: record.scopes, extra: { tokenId: record.id, grantId: record.grantId } };
      expect(hot.body).toEqual(await sdkAnswer2025(request, authInfo, sessionId));
    });
  }
});

describe('protocol details (issue 16)', () => {
  it('2025 session: invalid tool arguments are a result with isError, not a -32602 error', async () => {
    const t = await token();
    const sessionId = await openLegacySession(t);
    const { body } = await post(t, {
      headers: { ...json, 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-11-25' },
      body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'search', arguments: { query: 42 } } },
    });
    expect(body!.result.isError).toBe(true);
    expect(body!.result.content[0].text).toMatch(/invalid arguments for search/);
  });

  it('2025 session: an unknown tool is -32602 and its message is not prefixed twice', async () => {
    const t = await token();
    const sessionId = await openLegacySession(t);
    const { body } = await post(t, {
      headers: { ...json, 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-11-25' },
      body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'nope', arguments: {} } },
    });
    expect(body!.error.code).toBe(-32602);
    expect(body!.error.message).toBe('Unknown tool: nope');
  });

  it('JSON replies to POST /mcp have the status line 200 OK (and 202 Accepted)', async () => {
    const t = await token();
    const opened = await post(t, { headers: json, body: initialize() });
    expect(`${opened.status} ${opened.response.statusText}`).toBe('200 OK');
    const sessionId = opened.response.headers.get('mcp-session-id')!;
    const note = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...json, ...bearer(t), 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    expect(`${note.status} ${note.statusText}`).toBe('202 Accepted');
    const modern = await post(t, modernRequest('tools/list'));
    expect(`${modern.status} ${modern.response.statusText}`).toBe('200 OK');
  });

  it('initialize without params gets -32602 naming what is missing', async () => {
    const { status, body } = await post(await token(), { headers: json, body: { jsonrpc: '2.0', id: 1, method: 'initialize' } });
    expect(status).toBe(400);
    expect(body).toMatchObject({ id: 1, error: { code: -32602 } });
    expect(body!.error.message).toMatch(/protocolVersion, capabilities, clientInfo/);
  });

  it('a body that cannot be read gets a JSON-RPC error body on /mcp and /messages', async () => {
    const t = await token();
    for (const path of ['/mcp', '/messages/?session_id=x']) {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { ...json, ...bearer(t) }, body: '{"jsonrpc": "2.0", "id": 1, ' });
      expect(response.status, path).toBe(400);
      expect(await response.json(), path).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    }
  });

  it('session.opened and session.closed carry the same fields', async () => {
    const { token: t, record } = await mintToken(server.store, { baseUrl: server.url });
    const sessionId = await openLegacySession(t);
    const closed = await fetch(`${server.url}/mcp`, { method: 'DELETE', headers: { ...bearer(t), 'Mcp-Session-Id': sessionId } });
    expect(closed.status).toBe(200);
    await server.events.flush();
    const events = (await server.events.readLast(200)).filter((e) => (e.detail as { session_id?: string } | undefined)?.session_id === sessionId);
    const opened = events.find((e) => e.type === 'session.opened')!;
    const ended = events.find((e) => e.type === 'session.closed')!;
    expect(opened).toMatchObject({ client_id: record.clientId, token_id: record.id, detail: { transport: 'streamable-http', session_id: sessionId } });
    expect(ended).toMatchObject({
      client_id: record.clientId,
      token_id: record.id,
      detail: { transport: 'streamable-http', session_id: sessionId, reason: 'client closed' },
    });
    expect(
      Object.keys(ended)
        .filter((k) => k !== 'ts')
        .sort(),
    ).toEqual(
      Object.keys(opened)
        .filter((k) => k !== 'ts')
        .sort(),
    );
  });
});
