import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { verifyAccessToken } from '../../src/oauth/tokens.js';
import { authorizeWithSdk, HeadlessOAuthClientProvider, type TokenEndpointAuthMethod } from '../helpers/oauth-client.js';
import { expectNoSecretsAtRest } from '../helpers/oauth-flow.js';
import { OWNER_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';

interface Seen {
  method: string;
  url: URL;
  headers: Headers;
  body: string;
  status: number;
  responseBody: string;
}

/** A fetch for the SDK that records each request and response, to see what the SDK really sent. */
function recordingFetch(seen: Seen[]) {
  return async (input: string | URL, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    const responseBody = await response.text();
    seen.push({
      method: init?.method ?? 'GET',
      url: new URL(String(input)),
      headers: new Headers(init?.headers),
      body: init?.body === undefined || init.body === null ? '' : String(init.body),
      status: response.status,
      responseBody,
    });
    return new Response(response.status === 204 || response.status === 304 ? null : responseBody, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

describe("the MCP SDK client's auth() against the server (discovery → registration → consent → token)", () => {
  let server: TestServer;
  const seen: Seen[] = [];
  const secrets = new Set<string>([OWNER_PASSWORD]);

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  const cases: Array<[TokenEndpointAuthMethod, (token: Seen, clientId: string) => void]> = [
    [
      'client_secret_basic',
      (token, clientId) => {
        expect(token.headers.get('authorization')).toMatch(/^Basic /);
        const decoded = Buffer.from(token.headers.get('authorization')!.slice(6), 'base64').toString();
        expect(decoded.startsWith(`${clientId}:`)).toBe(true);
        expect(new URLSearchParams(token.body).has('client_secret')).toBe(false);
      },
    ],
    [
      'client_secret_post',
      (token, clientId) => {
        expect(token.headers.get('authorization')).toBeNull();
        const body = new URLSearchParams(token.body);
        expect(body.get('client_id')).toBe(clientId);
        expect(body.get('client_secret')).toMatch(/^[0-9a-f]{64}$/);
      },
    ],
    [
      'none',
      (token, clientId) => {
        expect(token.headers.get('authorization')).toBeNull();
        const body = new URLSearchParams(token.body);
        expect(body.get('client_id')).toBe(clientId);
        expect(body.has('client_secret')).toBe(false);
      },
    ],
  ];

  it.each(cases)('RFC 7591 + RFC 6749 §2.3.1: auth() completes for a %s client', async (method, checkTokenRequest) => {
    const provider = new HeadlessOAuthClientProvider({ authMethod: method });
    const start = seen.length;
    const fetchFn = recordingFetch(seen);

    const first = await auth(provider, { serverUrl: `${server.url}/mcp`, fetchFn });
    expect(first).toBe('REDIRECT');
    const client = provider.clientInformation()!;
    expect(client).toMatchObject({ client_id: expect.any(String), token_endpoint_auth_method: method });
    expect('client_secret' in client && client.client_secret !== undefined).toBe(method !== 'none');

    // The consent step happened in redirectToAuthorization: code, state and iss came back.
    const outcome = provider.outcomes.at(-1)!;
    expect(outcome.redirect.searchParams.get('iss')).toBe(server.url);
    const code = provider.takeAuthorizationCode();

    const second = await auth(provider, { serverUrl: `${server.url}/mcp`, authorizationCode: code, fetchFn });
    expect(second).toBe('AUTHORIZED');
    const tokens = provider.tokens()!;
    expect(tokens).toMatchObject({
      access_token: expect.stringMatching(/^mcp_[0-9a-f]{32}$/),
      token_type: expect.stringMatching(/^bearer$/i),
      expires_in: 86400,
      scope: 'mcp',
    });

    // What the SDK actually did, in order.
    const calls = seen.slice(start);
    const paths = calls.map((c) => `${c.method} ${c.url.pathname}`);
    expect(paths).toContain('GET /.well-known/oauth-protected-resource/mcp');
    expect(paths).toContain('GET /.well-known/oauth-authorization-server');
    expect(paths).toContain('POST /register');
    expect(paths.at(-1)).toBe('POST /token');
    const tokenRequest = calls.at(-1)!;
    checkTokenRequest(tokenRequest, client.client_id);
    // RFC 8707: the SDK asked for <base>/mcp, the resource named by the protected resource metadata.
    expect(new URLSearchParams(tokenRequest.body).get('resource')).toBe(`${server.url}/mcp`);
    expect(provider.invalidations).toEqual([]);

    const verified = await verifyAccessToken(tokens.access_token, server.app.context);
    expect(verified).toMatchObject({ clientId: client.client_id, resource: `${server.url}/mcp`, scopes: ['mcp'] });
    for (const secret of provider.secrets) secrets.add(secret);
  });

  it('RFC 9728 §3: auth() against <base>/sse discovers the /sse resource and gets a token for it', async () => {
    const provider = new HeadlessOAuthClientProvider({ authMethod: 'client_secret_basic' });
    const tokens = await authorizeWithSdk(`${server.url}/sse`, provider);
    const verified = await verifyAccessToken(tokens.access_token, server.app.context);
    expect(verified.resource).toBe(`${server.url}/sse`);
    for (const secret of provider.secrets) secrets.add(secret);
  });

  it('DESIGN.md §4: a denied consent reaches the SDK client as error=access_denied with its state', async () => {
    const provider = new HeadlessOAuthClientProvider({ authMethod: 'none', decision: 'deny' });
    expect(await auth(provider, { serverUrl: `${server.url}/mcp` })).toBe('REDIRECT');
    const outcome = provider.outcomes.at(-1)!;
    expect(outcome.code).toBeUndefined();
    expect(outcome.redirect.searchParams.get('error')).toBe('access_denied');
    expect(outcome.state).toEqual(expect.any(String));
    expect(() => provider.takeAuthorizationCode()).toThrow(/no authorization code/);
  });

  it('DESIGN.md §4: no response the SDK received was a 5xx or carried a stack trace', () => {
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.filter((s) => s.status >= 500 || /\n\s+at\s|node_modules/.test(s.responseBody)).map((s) => `${s.method} ${s.url} ${s.status}`)).toEqual([]);
  });

  it('DESIGN.md §6: db.json and events.jsonl contain none of the secrets the SDK saved', async () => {
    await expectNoSecretsAtRest(server, secrets);
  });
});

describe('the MCP SDK client refreshes with auth.refreshTokens on', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ config: { auth: { refreshTokens: true } } });
  });
  afterAll(async () => {
    await server.close();
  });

  it.each<TokenEndpointAuthMethod>(['client_secret_basic', 'client_secret_post', 'none'])(
    'OAuth 2.1 §4.3.1: a %s client gets a refresh token and auth() rotates it without a new consent',
    async (method) => {
      const provider = new HeadlessOAuthClientProvider({ authMethod: method });
      const tokens = await authorizeWithSdk(`${server.url}/mcp`, provider);
      expect(tokens.refresh_token).toEqual(expect.any(String));
      const consents = provider.outcomes.length;

      expect(await auth(provider, { serverUrl: `${server.url}/mcp` })).toBe('AUTHORIZED');
      const refreshed = provider.tokens()!;
      expect(provider.outcomes.length).toBe(consents);
      expect(refreshed.access_token).not.toBe(tokens.access_token);
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      await expect(verifyAccessToken(refreshed.access_token, server.app.context)).resolves.toMatchObject({ resource: `${server.url}/mcp` });
    },
  );
});
