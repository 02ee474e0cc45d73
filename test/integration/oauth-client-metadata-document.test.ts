import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpsFetcher, OutboundFetchError, type HttpsFetcherOptions } from '../../src/outbound/https-fetcher.js';
import { FETCH_TIMEOUT_MS, MAX_DOCUMENT_BYTES } from '../../src/oauth/fetch-cache.js';
import { createTestCa, resolveTestHost, startDocumentServer, testFetcher, type DocumentServer, type TestCa } from '../helpers/client-documents.js';
import { HeadlessOAuthClientProvider, authorizeWithSdk } from '../helpers/oauth-client.js';
import { challengeOf, expectNoServerErrors, expectWellFormedErrors, newVerifier, openConsent, RecordingHttp, toQuery } from '../helpers/oauth-flow.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** An MCP SDK client that identifies itself with a client metadata document (SEP-991). */
class MetadataDocumentProvider extends HeadlessOAuthClientProvider {
  constructor(readonly clientMetadataUrl: string) {
    super({ authMethod: 'none', clientName: 'Document client' });
  }
}

const LOOPBACK_CALLBACK = 'http://127.0.0.1/oauth/callback';

describe('Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01, MCP 2025-11-25)', () => {
  let ca: TestCa;
  let docs: DocumentServer;
  let server: TestServer;
  let http: RecordingHttp;

  /** A valid document for `path` on client.test, with overrides. */
  const publish = (path: string, overrides: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
    const clientId = docs.url(path);
    docs.json(
      path,
      {
        client_id: clientId,
        client_name: 'Document client',
        redirect_uris: [LOOPBACK_CALLBACK, 'https://client.test/callback'],
        token_endpoint_auth_method: 'none',
        ...overrides,
      },
      headers,
    );
    return clientId;
  };

  const authorizeQuery = (clientId: string, redirectUri = 'http://127.0.0.1:53682/oauth/callback') => {
    const query = toQuery({
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      code_challenge: challengeOf(newVerifier()),
      code_challenge_method: 'S256',
      state: 's1',
    });
    return `/authorize?${query}`;
  };

  beforeAll(async () => {
    ca = createTestCa();
    docs = await startDocumentServer(ca);
    server = await startTestServer({ clientMetadataFetcher: testFetcher(ca) });
    http = new RecordingHttp(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await docs?.close();
  });

  it('CIMD §5: the authorization server metadata advertises client_id_metadata_document_supported', async () => {
    const metadata = (await http.get('/.well-known/oauth-authorization-server')).json();
    expect(metadata.client_id_metadata_document_supported).toBe(true);
    expect(metadata.token_endpoint_auth_methods_supported).toContain('none');
  });

  it('an MCP SDK client with a metadata document URL completes the whole flow; the document is fetched once', async () => {
    const clientId = publish('/sdk-client.json', {}, { 'cache-control': 'max-age=3600' });
    const provider = new MetadataDocumentProvider(clientId);
    const tokens = await authorizeWithSdk(`${server.url}/mcp`, provider);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    // The SDK used the URL as client_id and registered nothing.
    expect(provider.clientInformation()?.client_id).toBe(clientId);
    expect(http.responses.some((r) => r.url.endsWith('/register'))).toBe(false);
    const tools = await fetch(`${server.url}/tools`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(tools.status).toBe(200);
    // /authorize and /token each needed the client; the second one was served from the cache.
    expect(docs.hits('/sdk-client.json')).toBe(1);
    // Approved, the client is kept: clients list shows it, and its tokens name it.
    const stored = await server.store.getClient(clientId);
    expect(stored).toMatchObject({ clientId, clientName: 'Document client', tokenEndpointAuthMethod: 'none', clientSecretHash: null });
    const [token] = (await server.store.listAccessTokens()).filter((t) => t.clientId === clientId);
    expect(token?.revokedAt).toBeNull();
    await server.events.flush();
    const events = await server.events.readLast(100_000);
    expect(events.filter((e) => e.client_id === clientId).map((e) => e.type)).toEqual(
      expect.arrayContaining(['authorization.requested', 'client.registered', 'authorization.approved', 'code.issued', 'token.issued']),
    );
    expect(events.find((e) => e.type === 'client.registered' && e.client_id === clientId)?.detail).toMatchObject({ via: 'client metadata document' });
  });

  it('the consent page shows the document host as the verified identity, escaped', async () => {
    const clientId = publish('/consent.json', { client_name: '<b>Sneaky</b>' });
    const form = await openConsent(http, {
      client_id: clientId,
      redirect_uri: 'http://127.0.0.1:4000/oauth/callback',
      response_type: 'code',
      code_challenge: challengeOf(newVerifier()),
      code_challenge_method: 'S256',
    });
    const page = form.response.text;
    expect(page).toMatch(/Identity verified[^<]*<\/span><span class="target-host">client\.test:\d+<\/span>/);
    expect(page).toContain('&lt;b&gt;Sneaky&lt;/b&gt;');
    expect(page).not.toContain('<b>Sneaky</b>');
    // The redirect host is shown as for any client.
    expect(page).toContain('127.0.0.1:4000');
  });

  it('a registered (dynamic) client gets no verified identity line', async () => {
    const registered = await http.postJson('/register', {
      client_name: 'Registered',
      redirect_uris: ['https://client.example/cb'],
      token_endpoint_auth_method: 'none',
    });
    const form = await openConsent(http, {
      client_id: registered.json().client_id,
      redirect_uri: 'https://client.example/cb',
      response_type: 'code',
      code_challenge: challengeOf(newVerifier()),
      code_challenge_method: 'S256',
    });
    expect(form.response.text).not.toContain('Identity verified');
  });

  it('OAuth 2.1 §4.1.3: a redirect URI the document does not list is refused on a page, never redirected; the document is fetched once', async () => {
    const clientId = publish('/redirects.json');
    for (let i = 0; i < 2; i++) {
      const page = await http.get(authorizeQuery(clientId, 'https://evil.example/callback'));
      expect(page.status).toBe(400);
      expect(page.headers.get('location')).toBeNull();
      expect(page.text).toContain('Redirect URI mismatch');
    }
    // RFC 8252 §7.3: the loopback URI in the document matches on any port, as for registered clients.
    expect((await http.get(authorizeQuery(clientId, 'http://127.0.0.1:61234/oauth/callback'))).status).toBe(200);
    expect((await http.get(authorizeQuery(clientId, 'http://127.0.0.1:61234/other'))).status).toBe(400);
    expect(docs.hits('/redirects.json')).toBe(1);
  });

  describe('documents that cannot be used: a page at /authorize, invalid_client at /token, and never fetched twice within the cache lifetime', () => {
    const cases: Array<{ name: string; setup: () => string; page: RegExp; fetches: number; path?: string }> = [
      {
        name: 'CIMD §4.1: client_id in the document differs from its URL',
        setup: () => {
          docs.json('/mismatch.json', { client_id: docs.url('/someone-else.json'), redirect_uris: [LOOPBACK_CALLBACK] });
          return docs.url('/mismatch.json');
        },
        page: /client_id in the client metadata document differs from the URL/,
        fetches: 1,
      },
      {
        name: 'CIMD §4.1: client_id differs by a trailing slash (no normalisation)',
        setup: () => {
          docs.json('/slash.json', { client_id: `${docs.url('/slash.json')}/`, redirect_uris: [LOOPBACK_CALLBACK] });
          return docs.url('/slash.json');
        },
        page: /differs from the URL/,
        fetches: 1,
      },
      {
        name: 'CIMD §6.5: the host resolves to a private address',
        setup: () => docs.url('/client.json', 'intranet.test'),
        page: /could not be fetched from intranet\.test:\d+/,
        fetches: 0,
        path: '/client.json',
      },
      {
        name: 'CIMD §6.5: the host resolves to the link-local metadata service',
        setup: () => docs.url('/latest/meta-data.json', 'metadata.test'),
        page: /could not be fetched from metadata\.test:\d+/,
        fetches: 0,
        path: '/latest/meta-data.json',
      },
      {
        name: 'CIMD §6.5: the host resolves to a carrier-grade NAT address',
        setup: () => docs.url('/cgnat.json', 'cgnat.test'),
        page: /could not be fetched from cgnat\.test:\d+/,
        fetches: 0,
        path: '/cgnat.json',
      },
      {
        name: 'CIMD §6.5: one of the addresses of the host is private',
        setup: () => docs.url('/mixed.json', 'mixed.test'),
        page: /could not be fetched from mixed\.test:\d+/,
        fetches: 0,
        path: '/mixed.json',
      },
      {
        name: 'CIMD §6.5: an IPv4-mapped IPv6 loopback address',
        setup: () => docs.url('/mapped.json', 'mapped.test'),
        page: /could not be fetched from mapped\.test:\d+/,
        fetches: 0,
        path: '/mapped.json',
      },
      {
        name: 'CIMD §4: a redirect to a private address is not followed',
        setup: () => {
          docs.handle('/moved.json', (_req, res) => res.writeHead(302, { location: docs.url('/client.json', 'intranet.test') }).end());
          return docs.url('/moved.json');
        },
        page: /answered with a redirect \(HTTP 302\); redirects are not followed/,
        fetches: 1,
      },
      {
        name: 'CIMD §4: no redirect is followed at all, even to an allowed host',
        setup: () => {
          publish('/target.json');
          docs.handle('/moved-ok.json', (_req, res) => res.writeHead(301, { location: docs.url('/target.json') }).end());
          return docs.url('/moved-ok.json');
        },
        page: /redirects are not followed/,
        fetches: 1,
      },
      {
        name: 'CIMD §6.6: a document larger than 64 KB (Content-Length)',
        setup: () => publish('/big.json', { padding: 'x'.repeat(70 * 1024) }),
        page: /larger than 64 KB/,
        fetches: 1,
      },
      {
        name: 'CIMD §6.6: a document larger than 64 KB (chunked, no Content-Length)',
        setup: () => {
          docs.handle('/big-chunked.json', (_req, res) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            for (let i = 0; i < 20; i++) res.write(' '.repeat(8 * 1024));
            res.end('{}');
          });
          return docs.url('/big-chunked.json');
        },
        page: /larger than 64 KB/,
        fetches: 1,
      },
      {
        name: 'CIMD §3: a client_id that is not an https URL',
        setup: () => `http://client.test:${docs.port}/plain.json`,
        page: /must be an https URL/,
        fetches: 0,
        path: '/plain.json',
      },
      {
        name: 'CIMD §3: a client_id URL without a path',
        setup: () => `https://client.test:${docs.port}/`,
        page: /must have a path/,
        fetches: 0,
        path: '/',
      },
      {
        name: 'a document asking for private_key_jwt without publishing keys (said so)',
        setup: () => publish('/jwt.json', { token_endpoint_auth_method: 'private_key_jwt' }),
        page: /private_key_jwt needs the client.s public keys: send jwks or jwks_uri/,
        fetches: 1,
      },
      {
        name: 'CIMD §4.1: a document asking for a shared secret method',
        setup: () => publish('/secret.json', { token_endpoint_auth_method: 'client_secret_basic' }),
        page: /client_secret_basic, a shared-secret method/,
        fetches: 1,
      },
      {
        name: 'CIMD §4: a document that is not served as JSON',
        setup: () => {
          docs.handle('/html.json', (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'));
          return docs.url('/html.json');
        },
        page: /not served as application\/json/,
        fetches: 1,
      },
      {
        name: 'CIMD §4: a document that is not there',
        setup: () => docs.url('/missing.json'),
        page: /could not be fetched \(HTTP 404\)/,
        fetches: 1,
      },
      {
        name: 'TLS: a certificate that does not name the host (the connection goes to the checked address, SNI names the host)',
        setup: () => docs.url('/wronghost.json', 'wronghost.test'),
        page: /TLS certificate of wronghost\.test:\d+ could not be verified/,
        fetches: 0,
        path: '/wronghost.json',
      },
      {
        name: 'a host that does not resolve',
        setup: () => docs.url('/nowhere.json', 'nowhere.test'),
        page: /could not be fetched from nowhere\.test:\d+/,
        fetches: 0,
        path: '/nowhere.json',
      },
    ];

    it('a refused address, an unresolvable host and a host that does not answer read the same (no oracle for internal names)', async () => {
      const pageOf = async (clientId: string) => {
        const response = await http.get(authorizeQuery(clientId, LOOPBACK_CALLBACK));
        return response.text.replace(/[a-z0-9.-]+\.test:\d+/g, 'HOST');
      };
      const privateHost = await pageOf(docs.url('/client.json', 'intranet.test'));
      expect(privateHost).toContain('could not be fetched from HOST');
      expect(await pageOf(docs.url('/client.json', 'nowhere.test'))).toBe(privateHost);
      expect(privateHost).not.toMatch(/private|loopback|link-local|resolve/i);
    });

    it.each(cases)('$name', async ({ setup, page: why, fetches, path }) => {
      const clientId = setup();
      const documentPath = path ?? new URL(clientId).pathname;
      const before = docs.hits(documentPath);
      for (let i = 0; i < 2; i++) {
        const page = await http.get(authorizeQuery(clientId));
        expect(page.status, page.text.slice(0, 300)).toBe(400);
        expect(page.headers.get('location')).toBeNull();
        expect(page.text).toContain('Application could not be verified');
        expect(page.text.replace(/&quot;/g, '"').replace(/&#39;/g, "'")).toMatch(why);
      }
      const token = await http.postForm('/token', {
        grant_type: 'authorization_code',
        code: 'x'.repeat(43),
        code_verifier: newVerifier(),
        redirect_uri: LOOPBACK_CALLBACK,
        client_id: clientId,
      });
      expect(token.status).toBe(401);
      expect(token.json().error).toBe('invalid_client');
      const revoke = await http.postForm('/revoke', { token: 'mcp_00000000000000000000000000000000', client_id: clientId });
      expect(revoke.status).toBe(401);
      expect(docs.hits(documentPath) - before).toBe(fetches);
    });
  });

  it('/token: a metadata-document client is public; a secret or HTTP Basic is invalid_client', async () => {
    const clientId = publish('/public.json');
    const withSecret = await http.postForm('/token', {
      grant_type: 'authorization_code',
      code: 'x',
      code_verifier: newVerifier(),
      client_id: clientId,
      client_secret: 'guess',
    });
    expect(withSecret.status).toBe(401);
    expect(withSecret.json()).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/public/) });
    const basic = await http.postForm(
      '/token',
      { grant_type: 'authorization_code', code: 'x', code_verifier: newVerifier() },
      { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:guess`).toString('base64')}` },
    );
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toMatch(/^Basic/);
    // Without a secret the client authenticates (none); the made-up code is then the problem.
    const none = await http.postForm('/token', { grant_type: 'authorization_code', code: 'x'.repeat(43), code_verifier: newVerifier(), client_id: clientId });
    expect(none.status).toBe(400);
    expect(none.json().error).toBe('invalid_grant');
  });

  it('no response was a 5xx or carried a stack trace, and every OAuth error is well formed', () => {
    expectNoServerErrors(http);
    expectWellFormedErrors(http);
  });
});

describe('a metadata-document client with refresh tokens on', () => {
  let ca: TestCa;
  let docs: DocumentServer;
  let server: TestServer;
  beforeAll(async () => {
    ca = createTestCa();
    docs = await startDocumentServer(ca);
    server = await startTestServer({ config: { auth: { refreshTokens: true } }, clientMetadataFetcher: testFetcher(ca) });
  });
  afterAll(async () => {
    await server?.close();
    await docs?.close();
  });

  it('OAuth 2.1 §4.3.1: gets a refresh token when its document lists the grant, and rotates it as client_id + refresh_token', async () => {
    const clientId = docs.url('/refreshing.json');
    docs.json('/refreshing.json', {
      client_id: clientId,
      client_name: 'Refreshing',
      redirect_uris: [LOOPBACK_CALLBACK],
      grant_types: ['authorization_code', 'refresh_token'],
    });
    const tokens = await authorizeWithSdk(`${server.url}/mcp`, new MetadataDocumentProvider(clientId));
    expect(tokens.refresh_token).toBeDefined();
    const http = new RecordingHttp(server.url);
    const refreshed = await http.postForm('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: clientId });
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(refreshed.json().refresh_token).not.toBe(tokens.refresh_token);
    // Another client cannot use it.
    docs.json('/other.json', { client_id: docs.url('/other.json'), redirect_uris: [LOOPBACK_CALLBACK], grant_types: ['authorization_code', 'refresh_token'] });
    const stolen = await http.postForm('/token', {
      grant_type: 'refresh_token',
      refresh_token: refreshed.json().refresh_token,
      client_id: docs.url('/other.json'),
    });
    expect(stolen.json().error).toBe('invalid_grant');
    expect(docs.hits('/refreshing.json')).toBe(1);
  });
});

describe('the outbound https fetcher with its production address policy', () => {
  const productionFetcher = (options: Partial<HttpsFetcherOptions>) =>
    createHttpsFetcher({ timeoutMs: FETCH_TIMEOUT_MS, maxBytes: MAX_DOCUMENT_BYTES, ...options });
  let ca: TestCa;
  let docs: DocumentServer;
  beforeAll(async () => {
    ca = createTestCa();
    docs = await startDocumentServer(ca);
    docs.json('/doc.json', { client_id: 'x', redirect_uris: [LOOPBACK_CALLBACK] });
  });
  afterAll(async () => {
    await docs?.close();
  });

  it.each([
    ['client.test', /could not be fetched from/],
    ['127.0.0.1', /could not be fetched from/],
    ['[::1]', /could not be fetched from/],
    ['[::ffff:127.0.0.1]', /could not be fetched from/],
    ['[::]', /could not be fetched from/],
    ['0.0.0.0', /could not be fetched from/],
    ['0x7f.0.0.1', /could not be fetched from/], // WHATWG URL parsing turns numeric forms into 127.0.0.1
    ['2130706433', /could not be fetched from/],
    ['[fe80::1]', /could not be fetched from/],
    ['169.254.169.254', /could not be fetched from/],
  ])('refuses %s before connecting, with the message of a host that does not answer', async (host, why) => {
    // Only the CA and the resolver differ from production; the address policy is the default.
    const fetcher = productionFetcher({ ca: ca.ca, resolve: resolveTestHost });
    const refused = fetcher.fetch(`https://${host}:${docs.port}/doc.json`);
    await expect(refused).rejects.toThrow(why);
    await expect(refused).rejects.toBeInstanceOf(OutboundFetchError);
    expect(docs.hits()).toBe(0);
  });

  it('the same request passes with the test policy (the server is really there)', async () => {
    const fetched = await testFetcher(ca).fetch(docs.url('/doc.json'));
    expect(fetched).toMatchObject({ status: 200, contentType: 'application/json' });
    expect(docs.hits('/doc.json')).toBe(1);
  });

  it('gives up after its deadline', async () => {
    docs.handle('/slow.json', () => {
      /* never answers */
    });
    // "within 0 s": the 300 ms deadline given, not the 5 s default, ended the wait.
    await expect(testFetcher(ca, { timeoutMs: 300 }).fetch(docs.url('/slow.json'))).rejects.toThrow(/did not arrive within 0 s/);
  });

  it('trusts only the CA it is given: Node’s default roots do not know the test CA', async () => {
    const fetcher = productionFetcher({ resolve: resolveTestHost, isAllowedAddress: (a) => a === '127.0.0.1' });
    await expect(fetcher.fetch(docs.url('/doc.json'))).rejects.toThrow(/TLS certificate/);
  });
});
