import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, startDocumentServer, testFetcher, type DocumentServer } from '../helpers/client-documents.js';
import { challengeOf, expectNoServerErrors, newVerifier, RecordingHttp, toQuery } from '../helpers/oauth-flow.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PRESET_URIS = [
  'https://chatgpt.com/connector_platform_oauth_redirect',
  'https://chatgpt.com/connector/oauth/c_6f1e0a8b2d4c',
  'https://claude.ai/api/mcp/auth_callback',
  'https://claude.com/api/mcp/auth_callback',
  'http://localhost:6274/oauth/callback',
  'http://127.0.0.1:33418/callback',
  'http://[::1]:8080/cb',
];

describe('redirect URI allowlist and trusted-client presets at POST /register', () => {
  const servers: TestServer[] = [];
  const start = async (auth: Record<string, unknown>, extra = {}) => {
    const server = await startTestServer({ config: { auth }, ...extra });
    servers.push(server);
    return new RecordingHttp(server.url);
  };
  const registerWith = (http: RecordingHttp, uri: string) => http.postJson('/register', { client_name: 'Test', redirect_uris: [uri] });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('without an allowlist registration stays open: any valid redirect URI is accepted', async () => {
    const http = await start({});
    for (const uri of [...PRESET_URIS, 'https://anything.example/cb', 'cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback']) {
      expect((await registerWith(http, uri)).status, uri).toBe(201);
    }
    // The base policy still applies (DESIGN.md §4).
    expect((await registerWith(http, 'http://evil.example/cb')).json().error).toBe('invalid_redirect_uri');
  });

  it('with an allowlist, the default presets (ChatGPT, Claude, loopback) and the listed patterns are accepted', async () => {
    const http = await start({ redirectUriAllowlist: ['https://app.example.com/oauth/*'] });
    for (const uri of [...PRESET_URIS, 'https://app.example.com/oauth/callback']) {
      expect((await registerWith(http, uri)).status, uri).toBe(201);
    }
  });

  it.each([
    ['https://evil.example/cb'],
    ['https://app.example.com/oauth/a/b'],
    ['https://app.example.com.evil.example/oauth/cb'],
    ['https://chatgpt.com/connector_platform_oauth_redirect/extra'],
    ['https://claude.ai/api/mcp/other_callback'],
    ['cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback'],
  ])('with an allowlist, %s is refused with invalid_redirect_uri', async (uri) => {
    const http = servers.length > 1 ? new RecordingHttp(servers[1]!.url) : await start({ redirectUriAllowlist: ['https://app.example.com/oauth/*'] });
    const response = await registerWith(http, uri);
    expect(response.status).toBe(400);
    expect(response.json()).toMatchObject({ error: 'invalid_redirect_uri', error_description: expect.stringContaining('not allowed on this server') });
  });

  it('one refused URI refuses the whole registration, and nothing is stored', async () => {
    const http = new RecordingHttp(servers[1]!.url);
    const before = (await servers[1]!.store.listClients()).length;
    const response = await http.postJson('/register', { redirect_uris: ['https://claude.ai/api/mcp/auth_callback', 'https://evil.example/cb'] });
    expect(response.json().error).toBe('invalid_redirect_uri');
    expect(await servers[1]!.store.listClients()).toHaveLength(before);
  });

  it('presets can be narrowed: trustedClients ["loopback"] with an empty allowlist accepts only loopback', async () => {
    const http = await start({ trustedClients: ['loopback'], redirectUriAllowlist: [] });
    expect((await registerWith(http, 'http://127.0.0.1:9999/cb')).status).toBe(201);
    for (const uri of ['https://chatgpt.com/connector_platform_oauth_redirect', 'https://claude.ai/api/mcp/auth_callback']) {
      expect((await registerWith(http, uri)).json().error, uri).toBe('invalid_redirect_uri');
    }
    expectNoServerErrors(http);
  });

  describe('a closed server applies the same rule to metadata-document clients at /authorize', () => {
    let docs: DocumentServer;
    let http: RecordingHttp;
    beforeAll(async () => {
      const ca = createTestCa();
      docs = await startDocumentServer(ca);
      http = await start({ trustedClients: ['claude'], redirectUriAllowlist: ['https://client.test/allowed'] }, { clientMetadataFetcher: testFetcher(ca) });
      docs.json('/closed.json', {
        client_id: docs.url('/closed.json'),
        redirect_uris: ['https://client.test/allowed', 'https://client.test/other', 'http://127.0.0.1/cb'],
      });
    });
    afterAll(async () => {
      await docs.close();
    });

    const open = (redirectUri: string) => {
      const query = toQuery({
        client_id: docs.url('/closed.json'),
        redirect_uri: redirectUri,
        response_type: 'code',
        code_challenge: challengeOf(newVerifier()),
        code_challenge_method: 'S256',
      });
      return http.get(`/authorize?${query}`);
    };

    it('an allowed redirect URI listed in the document gets the consent page', async () => {
      expect((await open('https://client.test/allowed')).status).toBe(200);
    });

    it.each([['https://client.test/other'], ['http://127.0.0.1:5000/cb']])('%s, listed in the document but not allowed, is refused on a page', async (uri) => {
      const page = await open(uri);
      expect(page.status).toBe(400);
      expect(page.headers.get('location')).toBeNull();
      expect(page.text).toContain('Redirect URI not allowed');
    });
  });
});
