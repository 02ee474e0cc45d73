import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OAuthMetadataSchema, OAuthProtectedResourceMetadataSchema } from '@modelcontextprotocol/sdk/shared/auth.js';
import { expectNoServerErrors, nullPaths, RecordingHttp } from '../helpers/oauth-flow.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** DESIGN.md §4: every path ChatGPT, Claude and the SDK probe for the authorization server. */
const AS_PATHS = [
  '/.well-known/oauth-authorization-server',
  '/.well-known/oauth-authorization-server/mcp',
  '/.well-known/oauth-authorization-server/sse',
  '/.well-known/openid-configuration',
];
const PRM_PATHS: Array<[string, string]> = [
  ['/.well-known/oauth-protected-resource', ''],
  ['/.well-known/oauth-protected-resource/mcp', '/mcp'],
  ['/.well-known/oauth-protected-resource/sse', '/sse'],
];

describe('discovery with refresh tokens off (the default, as in the seed)', () => {
  let server: TestServer;
  let http: RecordingHttp;

  beforeAll(async () => {
    server = await startTestServer();
    http = new RecordingHttp(server.url);
  });
  afterAll(async () => {
    await server.close();
  });

  it.each(AS_PATHS)('RFC 8414 §3: GET %s answers the authorization server metadata', async (path) => {
    const response = await http.get(path);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const metadata = response.json();
    // RFC 8414 §3.3: the issuer is identical to the URL the client derived the metadata URL from.
    expect(metadata.issuer).toBe(server.url);
    expect(metadata).toMatchObject({
      issuer: server.url,
      authorization_endpoint: `${server.url}/authorize`,
      token_endpoint: `${server.url}/token`,
      registration_endpoint: `${server.url}/register`,
      revocation_endpoint: `${server.url}/revoke`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
      scopes_supported: ['mcp'],
      authorization_response_iss_parameter_supported: true,
      client_id_metadata_document_supported: true,
    });
    expect(nullPaths(metadata)).toEqual([]);
    expect(() => OAuthMetadataSchema.parse(metadata)).not.toThrow();
  });

  it('RFC 8414 §2: the document is byte-identical at every path', async () => {
    const bodies = await Promise.all(AS_PATHS.map(async (path) => (await http.get(path)).text));
    expect(new Set(bodies).size).toBe(1);
  });

  it('RFC 8414 §2: without refresh tokens neither the refresh_token grant nor offline_access is advertised', async () => {
    const metadata = (await http.get('/.well-known/oauth-authorization-server')).json();
    expect(metadata.grant_types_supported).not.toContain('refresh_token');
    expect(metadata.scopes_supported).not.toContain('offline_access');
    for (const [path] of PRM_PATHS) expect((await http.get(path)).json().scopes_supported).not.toContain('offline_access');
  });

  it.each([...AS_PATHS, ...PRM_PATHS.map(([p]) => p), '/.well-known/mcp/manifest.json'])(
    'RFC 9110 §9.3.2: HEAD %s answers 200 without a body',
    async (path) => {
      const get = await http.get(path);
      const head = await http.request(path, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.text).toBe('');
      expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
    },
  );

  it.each(PRM_PATHS)('RFC 9728 §3: %s names resource <base>%s and this issuer', async (path, suffix) => {
    const response = await http.get(path);
    expect(response.status).toBe(200);
    const metadata = response.json();
    expect(metadata).toMatchObject({
      resource: `${server.url}${suffix}`,
      authorization_servers: [server.url],
      scopes_supported: ['mcp'],
      bearer_methods_supported: ['header'],
    });
    expect(nullPaths(metadata)).toEqual([]);
    expect(() => OAuthProtectedResourceMetadataSchema.parse(metadata)).not.toThrow();
  });

  it('DESIGN.md §4: the MCP manifest names both transports and the same issuer', async () => {
    const response = await http.get('/.well-known/mcp/manifest.json');
    expect(response.status).toBe(200);
    const manifest = response.json();
    expect(manifest).toEqual({
      name: 'cupcake',
      version: expect.any(String),
      description: expect.any(String),
      endpoints: { streamable_http: `${server.url}/mcp`, sse: `${server.url}/sse` },
      authorization: { issuer: server.url, protected_resource_metadata: `${server.url}/.well-known/oauth-protected-resource` },
    });
    expect(nullPaths(manifest)).toEqual([]);
  });

  it('DESIGN.md §4: /healthz answers {status: "ok", version}', async () => {
    const response = await http.get('/healthz');
    expect(response.status).toBe(200);
    expect(response.json()).toEqual({ status: 'ok', version: expect.any(String) });
  });

  it.each([...AS_PATHS, ...PRM_PATHS.map(([p]) => p), '/.well-known/mcp/manifest.json'])(
    'DESIGN.md §4: %s is public to browser clients (CORS *, preflight answered)',
    async (path) => {
      const get = await http.get(path, { origin: 'https://inspector.example' });
      expect(get.headers.get('access-control-allow-origin')).toBe('*');
      const preflight = await http.request(path, {
        method: 'OPTIONS',
        headers: { origin: 'https://inspector.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
      expect(preflight.headers.get('access-control-allow-headers')).toMatch(/MCP-Protocol-Version/i);
    },
  );

  it('DESIGN.md §4: discovery is built from baseUrl, never from the Host header', async () => {
    const response = await http.get('/.well-known/oauth-authorization-server', { host: 'evil.example', 'x-forwarded-host': 'evil.example' });
    expect(response.text).not.toContain('evil.example');
    expect(response.json().issuer).toBe(server.url);
  });

  it('DESIGN.md §4: no discovery response was a 5xx or carried a stack trace', () => {
    expectNoServerErrors(http);
  });
});

describe('discovery with auth.refreshTokens on', () => {
  let server: TestServer;
  let http: RecordingHttp;

  beforeAll(async () => {
    server = await startTestServer({ config: { auth: { refreshTokens: true } } });
    http = new RecordingHttp(server.url);
  });
  afterAll(async () => {
    await server.close();
  });

  it.each(AS_PATHS)('RFC 8414 §2: %s advertises the refresh_token grant and offline_access', async (path) => {
    const metadata = (await http.get(path)).json();
    expect(metadata.grant_types_supported).toEqual(['authorization_code', 'refresh_token']);
    expect(metadata.scopes_supported).toEqual(['mcp', 'offline_access']);
    expect(nullPaths(metadata)).toEqual([]);
  });

  it.each(PRM_PATHS)('RFC 9728 §2: %s lists offline_access among scopes_supported', async (path) => {
    expect((await http.get(path)).json().scopes_supported).toEqual(['mcp', 'offline_access']);
  });
});
