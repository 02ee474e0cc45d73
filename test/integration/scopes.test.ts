import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challengeOf, newVerifier, RecordingHttp, register, toQuery } from '../helpers/oauth-flow.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { mintToken } from '../helpers/tokens.js';

/**
 * Scopes that mean something: "mcp" is the scope of the resource (every MCP endpoint and tool);
 * auth.toolScopes reserves tools for narrower scopes; a call outside the token's scopes answers
 * 403 insufficient_scope with a challenge naming every scope it needs (RFC 6750 §3.1, MCP step-up).
 */
describe('scopes with meaning', () => {
  let server: TestServer;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    server = await startTestServer({ config: { auth: { scopes: ['mcp', 'read', 'admin'], toolScopes: { admin: ['who*'] } } } });
    for (const [name, scopes] of Object.entries({ readOnly: ['read'], mcp: ['mcp'], admin: ['mcp', 'admin'] })) {
      tokens[name] = (await mintToken(server.store, { baseUrl: server.url, resource: server.url, scopes })).token;
    }
  });
  afterAll(() => server.close());

  const headers = (token: string, extra: Record<string, string> = {}) => ({
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...extra,
  });

  function expectInsufficientScope(response: Response, needed: string): void {
    expect(response.status).toBe(403);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain(`scope="${needed}"`);
    expect(challenge).toContain('resource_metadata="');
  }

  it('RFC 6750 §3.1: a token without "mcp" (granted only "read") reaches neither /tools, /mcp nor /sse', async () => {
    const token = tokens.readOnly!;
    expectInsufficientScope(await fetch(`${server.url}/tools`, { headers: headers(token) }), 'mcp');
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    };
    expectInsufficientScope(await fetch(`${server.url}/mcp`, { method: 'POST', headers: headers(token), body: JSON.stringify(init) }), 'mcp');
    const sse = await fetch(`${server.url}/sse`, { headers: headers(token) });
    expectInsufficientScope(sse, 'mcp');
    await sse.body?.cancel();
  });

  it(
    'auth.toolScopes: a tool reserved for "admin" answers 403 with scope="mcp admin" ' + 'to a token with only "mcp", over /tools and /mcp; other tools work',
    async () => {
      const token = tokens.mcp!;
      expectInsufficientScope(await fetch(`${server.url}/tools/whoami`, { method: 'POST', headers: headers(token), body: '{}' }), 'mcp admin');
      const listed = await fetch(`${server.url}/tools`, { headers: headers(token) });
      expect(listed.status).toBe(200);

      const init = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: headers(token),
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 't', version: '1' } },
        }),
      });
      expect(init.status).toBe(200);
      const session = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-03-26' };
      await init.text();
      const call = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: headers(token, session),
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
      });
      expectInsufficientScope(call, 'mcp admin');
      const list = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: headers(token, session),
        body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
      });
      expect(list.status).toBe(200);
      await list.text();
    },
  );

  it('a token with "mcp admin" calls the reserved tool', async () => {
    const response = await fetch(`${server.url}/tools/whoami`, { method: 'POST', headers: headers(tokens.admin!), body: '{}' });
    expect(response.status).toBe(200);
    expect((await response.json()) as { isError?: boolean }).not.toMatchObject({ isError: true });
  });

  it('the consent page says in words what each scope allows', async () => {
    const http = new RecordingHttp(server.url);
    const client = await register(http, { redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'] });
    const query = toQuery({
      response_type: 'code',
      client_id: client.client_id,
      scope: 'mcp read admin',
      code_challenge: challengeOf(newVerifier()),
      code_challenge_method: 'S256',
    });
    const page = await http.get(`/authorize?${query}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Use the tools of');
    expect(page.text).toContain('Tools that need another permission (who*) are not included.');
    expect(page.text).toContain('Also call the tools who*');
    expect(page.text).toContain('Permission “read”');
    expect(page.text).toContain('it allows nothing by itself');
  });
});
