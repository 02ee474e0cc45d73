import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  challengeOf,
  CHATGPT_REDIRECT,
  expectNoServerErrors,
  newVerifier,
  obtainTokens,
  RecordingHttp,
  register,
  toQuery,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * No open redirect (RFC 9700 §4.11.2, RFC 6749 §10.15) and redirect URIs that reach a client:
 * errors found before consent go only to clients the owner vouched for; private-use schemes in
 * reverse domain name form (RFC 8252 §7.1); no OS-handler schemes; no non-ASCII URIs.
 */
describe('redirect safety', () => {
  let server: TestServer;
  let http: RecordingHttp;

  beforeAll(async () => {
    server = await startTestServer();
    http = new RecordingHttp(server.url);
  });
  afterAll(async () => {
    expectNoServerErrors(http);
    await server.close();
  });

  /** An authorization request that fails after the client and redirect URI were validated (no PKCE). */
  const badRequest = (client: RegisteredClient, redirectUri: string) =>
    http.get(`/authorize?${toQuery({ response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri, state: 's1' })}`);

  it(
    'RFC 9700 §4.11.2: a freshly registered client is never redirected to before ' + 'the owner approves it; the error page names the error and offers a link',
    async () => {
      const phish = 'https://phish.example/login';
      const client = await register(http, { client_name: 'Totally ChatGPT', redirect_uris: [phish] });
      const response = await badRequest(client, phish);
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.text).toContain('invalid_request');
      // The person may choose to go back with the error: a link, never an automatic redirect.
      const href = /<a href="([^"]+)"/.exec(response.text)?.[1]?.replace(/&#61;/g, '=').replace(/&amp;/g, '&');
      const link = new URL(href!);
      expect(`${link.origin}${link.pathname}`).toBe(phish);
      expect(link.searchParams.get('error')).toBe('invalid_request');
      expect(link.searchParams.get('state')).toBe('s1');
      expect(response.text).not.toMatch(/http-equiv="refresh"/i);
    },
  );

  it('RFC 9700 §4.11.2: once the owner approved a client, its errors are redirected (with state and iss)', async () => {
    const app = 'https://app.example/callback';
    const client = await register(http, { client_name: 'Approved app', redirect_uris: [app] });
    expect((await badRequest(client, app)).status).toBe(400);
    await obtainTokens(http, client);
    const response = await badRequest(client, app);
    expect(response.status).toBe(302);
    const location = response.location();
    expect(`${location.origin}${location.pathname}`).toBe(app);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('state')).toBe('s1');
    expect(location.searchParams.get('iss')).toBe(server.url);
  });

  it('RFC 9700 §4.11.2: trusted-client presets (ChatGPT, loopback) receive their error redirects before any approval', async () => {
    for (const uri of [CHATGPT_REDIRECT, 'http://127.0.0.1:6274/oauth/callback']) {
      const client = await register(http, { client_name: 'Preset', redirect_uris: [uri] });
      const response = await badRequest(client, uri);
      expect(response.status, uri).toBe(302);
      expect(response.location().searchParams.get('error')).toBe('invalid_request');
    }
  });

  it('RFC 8252 §7.1: a private-use scheme must be in reverse domain name form; OS-handler schemes are refused at registration', async () => {
    for (const uri of [
      'smb://attacker.example/share',
      'search-ms:query=x&crumb=location:\\\\attacker.example',
      'ms-settings:privacy',
      'ms-word:ofe|u|https://x.example/a.docx',
      'file:///etc/passwd',
      'myapp://callback',
      'shell:startup',
    ]) {
      const response = await http.postJson('/register', { redirect_uris: [uri] });
      expect(response.status, uri).toBe(400);
      expect(response.json().error, uri).toBe('invalid_redirect_uri');
    }
    for (const uri of ['com.example.app:/oauth2redirect', 'cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback']) {
      expect((await http.postJson('/register', { redirect_uris: [uri] })).status, uri).toBe(201);
    }
  });

  it('RFC 3986 §2: a non-ASCII redirect URI (a Cyrillic "с" in chatgpt.com) is refused with invalid_redirect_uri, never a 5xx', async () => {
    for (const uri of ['https://\u0441hatgpt.com/connector_platform_oauth_redirect', 'https://app.example/caf\u00e9', 'com.example.app:/\u00e9']) {
      const response = await http.postJson('/register', { redirect_uris: [uri] });
      expect(response.status, uri).toBe(400);
      expect(response.json().error).toBe('invalid_redirect_uri');
    }
    // The punycode form is an ordinary (different) host and works end to end.
    const client = await register(http, { redirect_uris: ['https://xn--hatgpt-3fg.com/cb'] });
    const verifier = newVerifier();
    const page = await http.get(
      `/authorize?${toQuery({ response_type: 'code', client_id: client.client_id, code_challenge: challengeOf(verifier), code_challenge_method: 'S256' })}`,
    );
    expect(page.status).toBe(200);
    expect(page.text).toContain('xn--hatgpt-3fg.com');
  });

  it('a record stored with a non-ASCII redirect URI before this rule is shown an error page, never a 5xx', async () => {
    const client = await register(http, { redirect_uris: ['https://legacy.example/cb'] });
    const record = (await server.store.getClient(client.client_id))!;
    await server.store.upsertClient({ ...record, redirectUris: ['https://\u0441hatgpt.com/cb'] });
    const query = toQuery({ response_type: 'code', client_id: client.client_id, code_challenge: challengeOf(newVerifier()), code_challenge_method: 'S256' });
    const response = await http.get(`/authorize?${query}`);
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });
});
