import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHATGPT_REDIRECT,
  CLAUDE_REDIRECT,
  expectNoSecretsAtRest,
  expectNoServerErrors,
  expectWellFormedErrors,
  nullPaths,
  RecordingHttp,
  register,
} from '../helpers/oauth-flow.js';
import { createFixedClock } from '../../src/shared/clock.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('POST /register (RFC 7591)', () => {
  let server: TestServer;
  let http: RecordingHttp;

  beforeAll(async () => {
    server = await startTestServer();
    http = new RecordingHttp(server.url);
  });
  afterAll(async () => {
    await server.close();
  });

  it('RFC 7591 §3.2.1: ChatGPT registers as a confidential client_secret_basic client with a hex secret', async () => {
    const before = Math.floor(Date.now() / 1000);
    const response = await http.postJson('/register', { client_name: 'ChatGPT', redirect_uris: [CHATGPT_REDIRECT] });
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = response.json();
    expect(body).toEqual({
      client_id: expect.stringMatching(UUID),
      client_secret: expect.stringMatching(/^[0-9a-f]{64}$/),
      client_id_issued_at: expect.any(Number),
      client_secret_expires_at: 0,
      redirect_uris: [CHATGPT_REDIRECT],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      client_name: 'ChatGPT',
    });
    expect(Number.isInteger(body.client_id_issued_at)).toBe(true);
    expect(body.client_id_issued_at).toBeGreaterThanOrEqual(before);
    expect(nullPaths(body)).toEqual([]);
    // DESIGN.md §6: only the secret's hash is kept.
    const stored = await server.store.getClient(body.client_id);
    expect(stored?.clientSecretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(stored?.clientSecretHash).not.toBe(body.client_secret);
  });

  it(
    "RFC 7591 §3.2.1: Claude's registration (client_secret_post, refresh_token " + 'grant) is accepted; without refresh tokens the grant is not registered',
    async () => {
      const body = await register(http, {
        client_name: 'Claude',
        redirect_uris: [CLAUDE_REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
        scope: 'mcp',
      });
      expect(body).toMatchObject({
        client_id: expect.stringMatching(UUID),
        client_secret: expect.stringMatching(/^[0-9a-f]{64}$/),
        token_endpoint_auth_method: 'client_secret_post',
        redirect_uris: [CLAUDE_REDIRECT],
        grant_types: ['authorization_code'],
        scope: 'mcp',
      });
      expect(nullPaths(body)).toEqual([]);
    },
  );

  it('RFC 7591 §2: a public client (none) with a loopback redirect gets no secret', async () => {
    const body = await register(http, { client_name: 'Inspector', redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none' });
    expect(body.token_endpoint_auth_method).toBe('none');
    expect(body).not.toHaveProperty('client_secret');
    expect(body.client_secret_expires_at).toBe(0);
    expect(nullPaths(body)).toEqual([]);
  });

  it('RFC 7591 §2: ChatGPT per-connector and private-use-scheme redirect URIs are accepted', async () => {
    const body = await register(http, {
      redirect_uris: [
        'https://chatgpt.com/connector/oauth/abc123XYZ',
        'cursor://anysphere.cursor-retrieval/oauth/callback',
        'http://localhost:6274/oauth/callback',
        'http://[::1]/cb',
      ],
    });
    expect(body.redirect_uris).toHaveLength(4);
    // RFC 7591 §2: token_endpoint_auth_method defaults to client_secret_basic.
    expect(body.token_endpoint_auth_method).toBe('client_secret_basic');
    expect(body).not.toHaveProperty('client_name');
  });

  it("RFC 7591 §2: claude.ai's registration with its own scope name (claudeai) and no secret is accepted", async () => {
    const body = await register(http, {
      client_name: 'claudeai',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'claudeai',
      redirect_uris: [CLAUDE_REDIRECT],
    });
    expect(body).toMatchObject({ token_endpoint_auth_method: 'none', redirect_uris: [CLAUDE_REDIRECT] });
    expect(body).not.toHaveProperty('client_secret');
    expect(nullPaths(body)).toEqual([]);
  });

  it('OpenID Connect Registration §2 (MCP 2026-07-28): application_type is kept and echoed, and decides which redirect URIs fit', async () => {
    const native = await http.postJson('/register', {
      client_name: 'Desktop',
      application_type: 'native',
      redirect_uris: ['cursor://anysphere.cursor-retrieval/oauth/callback', 'http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'none',
    });
    expect(native.status, native.text).toBe(201);
    expect(native.json().application_type).toBe('native');
    const web = await http.postJson('/register', { application_type: 'web', redirect_uris: ['https://app.example/cb', 'http://localhost:3000/cb'] });
    expect(web.status, web.text).toBe(201);
    expect(web.json().application_type).toBe('web');

    const webWithScheme = await http.postJson('/register', { application_type: 'web', redirect_uris: ['cursor://anysphere.cursor-retrieval/oauth/callback'] });
    expect(webWithScheme.status).toBe(400);
    expect(webWithScheme.json()).toMatchObject({ error: 'invalid_redirect_uri', error_description: expect.stringMatching(/only a native app can receive/) });
    const unknown = await http.postJson('/register', { application_type: 'desktop', redirect_uris: ['https://app.example/cb'] });
    expect(unknown.status).toBe(400);
    expect(unknown.json().error).toBe('invalid_client_metadata');
    // Clients that do not say (Cursor today) keep registering their private-use scheme.
    expect((await http.postJson('/register', { redirect_uris: ['cursor://anysphere.cursor-retrieval/oauth/callback'] })).status).toBe(201);
  });

  it('RFC 7591 §2: members sent as null are treated as absent, and the response has no nulls', async () => {
    const body = await register(http, { redirect_uris: [CHATGPT_REDIRECT], client_name: null, logo_uri: null, scope: null });
    expect(nullPaths(body)).toEqual([]);
  });

  const rejected: Array<[string, string]> = [
    ['javascript:alert(1)', 'javascript: runs script in the browser'],
    ['JavaScript:alert(1)//', 'scheme case does not matter'],
    ['data:text/html,<script>alert(1)</script>', 'data: renders attacker content'],
    ['file:///etc/passwd', 'file: reads local files'],
    ['vbscript:msgbox(1)', 'vbscript: runs script'],
    ['https://client.example/cb#frag', 'RFC 6749 §3.1.2: no fragment'],
    ['https://client.example/cb#', 'RFC 6749 §3.1.2: not even an empty fragment'],
    ['https://user:pass@client.example/cb', 'userinfo hides the real host'],
    ['https://evil.example@client.example/cb', 'userinfo without password'],
    ['http://client.example/cb', 'OAuth 2.1 §2.3.1: http only on loopback'],
    ['http://127.0.0.1.evil.example/cb', 'a host that only looks like loopback'],
    ['/relative/callback', 'RFC 6749 §3.1.2: absolute URI required'],
    ['https:evil.example/cb', 'RFC 3986 §3: no authority, though browsers read a host into it'],
    ['https://', 'no host'],
    ['https://client.example/ cb', 'whitespace'],
    ['', 'empty'],
  ];
  it.each(rejected)('RFC 7591 §3.2.2: redirect URI %j is refused with 400 invalid_redirect_uri (%s)', async (uri) => {
    const response = await http.postJson('/register', { client_name: 'x', redirect_uris: [uri] });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.json()).toMatchObject({ error: 'invalid_redirect_uri', error_description: expect.any(String) });
  });

  it('RFC 7591 §3.2.2: one bad URI among good ones refuses the whole registration', async () => {
    const clientsBefore = (await server.store.listClients()).length;
    const response = await http.postJson('/register', { redirect_uris: [CHATGPT_REDIRECT, 'javascript:alert(1)'] });
    expect(response.status).toBe(400);
    expect(response.json().error).toBe('invalid_redirect_uri');
    expect((await server.store.listClients()).length).toBe(clientsBefore);
  });

  it.each<[Record<string, unknown>, string]>([
    [{}, 'missing redirect_uris'],
    [{ redirect_uris: [] }, 'empty redirect_uris'],
    [{ redirect_uris: CHATGPT_REDIRECT }, 'redirect_uris not an array'],
  ])('RFC 7591 §3.2.2: %j is refused with invalid_redirect_uri (%s)', async (metadata, _why) => {
    const response = await http.postJson('/register', metadata);
    expect(response.status).toBe(400);
    expect(response.json().error).toBe('invalid_redirect_uri');
  });

  it.each<[Record<string, unknown>, string]>([
    [{ token_endpoint_auth_method: 'private_key_jwt' }, 'an auth method we do not support'],
    [{ grant_types: ['client_credentials'] }, 'a grant we do not support'],
    [{ grant_types: ['refresh_token'] }, 'no authorization_code grant'],
    [{ response_types: ['token'] }, 'OAuth 2.1 §4: the implicit grant is gone'],
    [{ client_name: 'x'.repeat(5000) }, 'an absurd client_name'],
    [{ client_name: 42 }, 'a client_name that is not a string'],
  ])('RFC 7591 §3.2.2: %j is refused with invalid_client_metadata (%s)', async (extra, _why) => {
    const response = await http.postJson('/register', { redirect_uris: [CHATGPT_REDIRECT], ...extra });
    expect(response.status).toBe(400);
    expect(response.json()).toMatchObject({ error: 'invalid_client_metadata', error_description: expect.any(String) });
  });

  it.each([
    ['[1,2,3]', 'an array'],
    ['"just a string"', 'a string'],
  ])('RFC 7591 §3.1: a JSON body that is %s is refused with 400', async (body) => {
    const response = await http.request('/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.json().error).toMatch(/^invalid_(client_metadata|request|redirect_uri)$/);
  });

  it('RFC 7591 §3.1: metadata sent as a form is refused with 400 JSON', async () => {
    const response = await http.postForm('/register', { redirect_uris: CHATGPT_REDIRECT });
    expect(response.status).toBe(400);
    expect(response.json().error).toBe('invalid_client_metadata');
  });

  it('DESIGN.md §4: malformed JSON is answered 400 with a JSON error', async () => {
    const response = await http.request('/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"redirect_uris": [' });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.json()).toMatchObject({ error: 'invalid_request', error_description: expect.any(String) });
  });

  it('DESIGN.md §4: a body over 1 MB is answered 413 with a JSON error', async () => {
    const body = JSON.stringify({ redirect_uris: [CHATGPT_REDIRECT], client_name: 'x', padding: 'y'.repeat(1_100_000) });
    const response = await http.request('/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.json().error).toEqual(expect.any(String));
  });

  it('DESIGN.md §4: /register answers CORS preflight for browser-based clients', async () => {
    const response = await http.request('/register', {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:6274', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('DESIGN.md §7: each registration is logged as client.registered without its secret', async () => {
    const body = await register(http, { client_name: 'Audited', redirect_uris: [CHATGPT_REDIRECT] });
    await server.events.flush();
    const events = await server.events.readLast(50, { types: ['client.registered'], clientId: body.client_id });
    expect(events).toHaveLength(1);
    expect(JSON.stringify(events[0])).not.toContain(body.client_secret!);
  });

  it('DESIGN.md §4: no registration response was a 5xx or carried a stack trace', () => {
    expectNoServerErrors(http);
  });

  it('DESIGN.md §6: db.json and events.jsonl contain none of the client secrets handed out', async () => {
    await expectNoSecretsAtRest(server, http.secrets);
  });

  it('RFC 6749 §5.2 + §4.1.2.1: every error code and error_description uses only the allowed characters', () => {
    expectWellFormedErrors(http);
  });
});

describe('registration rate limit (issue 3: generous, per address)', () => {
  const clock = createFixedClock(Date.UTC(2026, 5, 1));
  let server: TestServer;
  let http: RecordingHttp;

  beforeAll(async () => {
    server = await startTestServer({ clock });
    http = new RecordingHttp(server.url);
  });
  afterAll(async () => {
    await server.close();
  });

  it('DESIGN.md §4: hundreds of registrations an hour pass; past 300 the address gets 429 with Retry-After until the hour is over', async () => {
    for (let i = 0; i < 300; i++) {
      const response = await http.postJson('/register', { redirect_uris: [CHATGPT_REDIRECT] });
      expect(response.status).toBe(201);
    }
    const limited = await http.postJson('/register', { redirect_uris: [CHATGPT_REDIRECT] });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.json()).toMatchObject({ error: expect.any(String), error_description: expect.any(String) });
    clock.advance(3_600_000);
    expect((await http.postJson('/register', { redirect_uris: [CHATGPT_REDIRECT] })).status).toBe(201);
  });
});
