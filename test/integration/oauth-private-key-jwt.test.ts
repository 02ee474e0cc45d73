import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSigningKey, hmacWithPublicKey, jwksOf, signAssertion, unsignedAssertion, type SigningKey } from '../helpers/client-assertions.js';
import { createTestCa, startDocumentServer, testFetcher, type DocumentServer, type TestCa } from '../helpers/client-documents.js';
import { authorize, expectNoServerErrors, expectWellFormedErrors, RecordingHttp } from '../helpers/oauth-flow.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const CHATGPT_REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect';

/** ChatGPT's document as published since late August 2026 (singular and plural members, RS256, a jwks_uri). */
function chatGptDocument(clientId: string, jwksUri: string, methods: string[] = ['none', 'private_key_jwt']) {
  return {
    client_id: clientId,
    client_uri: 'https://chatgpt.com/',
    redirect_uris: [CHATGPT_REDIRECT],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_methods_supported: methods,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    client_name: 'ChatGPT',
    token_endpoint_auth_signing_alg: 'RS256',
    jwks_uri: jwksUri,
  };
}

/** Records and refusals (events.jsonl, events.rejections.jsonl), in time order. */
async function events(server: TestServer): Promise<Array<Record<string, any>>> {
  await server.events.flush();
  return server.events.readLast(100_000);
}

async function listToolsOverMcp(server: TestServer, accessToken: string): Promise<string[]> {
  const client = new Client({ name: 'chatgpt-like', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } }),
  );
  try {
    return (await client.listTools()).tools.map((t) => t.name);
  } finally {
    await client.close();
  }
}

describe('private_key_jwt client authentication (RFC 7523 §2.2, RFC 7521 §4.2): ChatGPT with a client metadata document', () => {
  let ca: TestCa;
  let docs: DocumentServer;
  let server: TestServer;
  let http: RecordingHttp;
  let key: SigningKey;
  let clientId: string;
  let tokenEndpoint: string;

  const tokenRequest = (code: string, verifier: string, assertion: string | undefined, extra: Record<string, string> = {}) =>
    http.postForm('/token', {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: CHATGPT_REDIRECT,
      resource: `${server.url}/mcp`,
      ...(assertion === undefined ? {} : { client_assertion_type: ASSERTION_TYPE, client_assertion: assertion }),
      ...extra,
    });

  const authorizeChatGpt = (id = clientId) =>
    authorize(http, { client_id: id, redirect_uri: CHATGPT_REDIRECT, scope: 'mcp', resource: `${server.url}/mcp`, state: 'oauth_s_1' });

  beforeAll(async () => {
    ca = createTestCa();
    docs = await startDocumentServer(ca);
    key = await createSigningKey('RS256');
    docs.json('/oauth/jwks.json', jwksOf(key), { 'cache-control': 'max-age=300' });
    clientId = docs.url('/oauth/app1/client.json');
    docs.json('/oauth/app1/client.json', chatGptDocument(clientId, docs.url('/oauth/jwks.json')));
    server = await startTestServer({ clientMetadataFetcher: testFetcher(ca) });
    http = new RecordingHttp(server.url);
    tokenEndpoint = `${server.url}/token`;
  });
  afterAll(async () => {
    await server?.close();
    await docs?.close();
  });

  it('RFC 8414 §2: the metadata advertises private_key_jwt with its asymmetric signing algorithms only', async () => {
    const metadata = (await http.get('/.well-known/oauth-authorization-server')).json();
    expect(metadata.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['none', 'private_key_jwt']));
    expect(metadata.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', 'PS256', 'ES256', 'EdDSA']));
    expect(metadata.token_endpoint_auth_signing_alg_values_supported.some((alg: string) => alg === 'none' || alg.startsWith('HS'))).toBe(false);
    expect(metadata.revocation_endpoint_auth_signing_alg_values_supported).toEqual(metadata.token_endpoint_auth_signing_alg_values_supported);
  });

  it('ChatGPT signs in: authorize with resource, consent, token with an RS256 client assertion, then MCP over /mcp', async () => {
    const { code, verifier, redirect } = await authorizeChatGpt();
    expect(redirect.searchParams.get('state')).toBe('oauth_s_1');
    const assertion = await signAssertion(key, { clientId, audience: tokenEndpoint });
    const response = await tokenRequest(code, verifier, assertion);
    expect(response.status, response.text).toBe(200);
    const tokens = response.json();
    expect(tokens).toMatchObject({ token_type: 'Bearer', scope: 'mcp', expires_in: 86_400 });
    expect(tokens.access_token).toMatch(/^mcp_[0-9a-f]{32}$/);
    expect(await listToolsOverMcp(server, tokens.access_token)).toContain('whoami');

    const stored = await server.store.getClient(clientId);
    expect(stored).toMatchObject({ tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: docs.url('/oauth/jwks.json'), clientSecretHash: null });
    const issued = (await events(server)).filter((e) => e.client_id === clientId).map((e) => e.type);
    expect(issued).toEqual(expect.arrayContaining(['authorization.approved', 'code.issued', 'token.issued']));
    expectNoServerErrors(http);
  });

  it('RFC 7523 §3: aud may be the issuer instead of the token endpoint, as a string or in a list', async () => {
    for (const audience of [server.url, [server.url, 'https://someone-else.example']]) {
      const { code, verifier } = await authorizeChatGpt();
      const response = await tokenRequest(code, verifier, await signAssertion(key, { clientId, audience }));
      expect(response.status, response.text).toBe(200);
    }
  });

  describe('every failing assertion is 401 invalid_client, issues no token and leaves the code unused', () => {
    let other: SigningKey;
    beforeAll(async () => {
      other = await createSigningKey('RS256', key.kid);
    });

    const claims = () => {
      const now = Math.floor(Date.now() / 1000);
      return { iss: clientId, sub: clientId, aud: tokenEndpoint, iat: now, exp: now + 300, jti: `j-${Math.random()}` };
    };
    const cases: Array<[string, () => Promise<string>, RegExp]> = [
      ['signed by another key with the same kid', () => signAssertion(other, { clientId, audience: tokenEndpoint }), /signature does not verify/],
      ['alg none', async () => unsignedAssertion(claims()), /signed with .none.; this server accepts only RS256/],
      ['HS256 made from the published public key', () => hmacWithPublicKey(key, claims()), /signed with .HS256.; this server accepts only RS256/],
      ['another audience', () => signAssertion(key, { clientId, audience: 'https://other-server.example/token' }), /aud must name this authorization server/],
      ['expired', () => signAssertion(key, { clientId, audience: tokenEndpoint, issuedAt: Math.floor(Date.now() / 1000) - 900 }), /expired/],
      [
        'iss is not the client_id',
        () => signAssertion(key, { clientId, audience: tokenEndpoint, claims: { iss: docs.url('/oauth/other/client.json') } }),
        /iss differs from client_id/,
      ],
      ['sub is not the client_id', () => signAssertion(key, { clientId, audience: tokenEndpoint, claims: { sub: 'someone' } }), /sub must be the client_id/],
      ['valid for an hour', () => signAssertion(key, { clientId, audience: tokenEndpoint, lifetimeSeconds: 3_600 }), /more than 10 minutes/],
      ['without a jti', () => signAssertion(key, { clientId, audience: tokenEndpoint, claims: { jti: undefined } }), /jti claim is missing/],
      ['a jti that is not a string', () => signAssertion(key, { clientId, audience: tokenEndpoint, claims: { jti: 12345 } }), /jti must be a string/],
      [
        'without an iss (the client named by client_id alone)',
        () => signAssertion(key, { clientId, audience: tokenEndpoint, claims: { iss: undefined } }),
        /iss must be the client_id/,
      ],
      [
        'typed as an access token (at+jwt)',
        () => signAssertion(key, { clientId, audience: tokenEndpoint, header: { typ: 'at+jwt' } }),
        /typ .at\+jwt. is not a client assertion/,
      ],
      [
        'a kid the client never published',
        () => signAssertion(key, { clientId, audience: tokenEndpoint, header: { kid: 'unknown-kid' } }),
        /no key in the client's jwks_uri matches/,
      ],
      ['not a JWT at all', async () => 'not-a-jwt', /not a signed JWT/],
    ];

    it.each(cases)('%s', async (_name, make, reason) => {
      const { code, verifier } = await authorizeChatGpt();
      const before = (await server.store.listAccessTokens()).length;
      const response = await tokenRequest(code, verifier, await make(), { client_id: clientId });
      expect(response.status, response.text).toBe(401);
      expect(response.json().error).toBe('invalid_client');
      expect(response.json().error_description).toMatch(reason);
      expect(response.headers.get('www-authenticate')).toMatch(/^Basic /);
      expect((await server.store.listAccessTokens()).length).toBe(before);
      // The code was not spent: the real client can still use it.
      const retry = await tokenRequest(code, verifier, await signAssertion(key, { clientId, audience: tokenEndpoint }));
      expect(retry.status, retry.text).toBe(200);
    });

    it('RFC 7523 §3 item 7: an assertion used at /revoke cannot be used again at /token', async () => {
      const assertion = await signAssertion(key, { clientId, audience: [tokenEndpoint, `${server.url}/revoke`] });
      expect(
        (await http.postForm('/revoke', { token: 'mcp_00000000000000000000000000000000', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion }))
          .status,
      ).toBe(200);
      const { code, verifier } = await authorizeChatGpt();
      const replay = await tokenRequest(code, verifier, assertion);
      expect(replay.status).toBe(401);
      expect(replay.json().error_description).toMatch(/already used/);
    });

    it('RFC 7523 §3 item 7: a jti is accepted once; the replay is refused even for a fresh code', async () => {
      const assertion = await signAssertion(key, { clientId, audience: tokenEndpoint });
      const first = await authorizeChatGpt();
      expect((await tokenRequest(first.code, first.verifier, assertion)).status).toBe(200);
      const second = await authorizeChatGpt();
      const replay = await tokenRequest(second.code, second.verifier, assertion);
      expect(replay.status).toBe(401);
      expect(replay.json()).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/already used/) });
    });

    it('a failure is written to the audit log with its reason, never the assertion', async () => {
      const assertion = await signAssertion(other, { clientId, audience: tokenEndpoint });
      const { code, verifier } = await authorizeChatGpt();
      expect((await tokenRequest(code, verifier, assertion)).status).toBe(401);
      // Logged under the client the assertion claims to be (its unverified iss), for "clients show";
      // once per address, client and method per window (SECURITY.md): the first refusal of this
      // client, the foreign key of the first case above, is the one on record.
      const failures = (await events(server)).filter((e) => e.type === 'client.authentication_failed' && e.client_id === clientId);
      expect(failures[0]?.detail).toMatchObject({ endpoint: '/token', method: 'private_key_jwt', reason: expect.stringMatching(/signature does not verify/) });
      const log = (await readFile(join(server.dataDir, 'events.jsonl'), 'utf8')) + (await readFile(join(server.dataDir, 'events.rejections.jsonl'), 'utf8'));
      expect(log).not.toContain(assertion.split('.')[2]);
    });

    it('RFC 6749 §2.3: an assertion together with a client secret is refused (one method per request)', async () => {
      const { code, verifier } = await authorizeChatGpt();
      const response = await tokenRequest(code, verifier, await signAssertion(key, { clientId, audience: tokenEndpoint }), { client_secret: 'x' });
      expect(response.status).toBe(400);
      expect(response.json().error).toBe('invalid_request');
    });

    it('RFC 7523 §2.2: another client_assertion_type is refused', async () => {
      const { code, verifier } = await authorizeChatGpt();
      const response = await tokenRequest(code, verifier, undefined, {
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer',
        client_assertion: 'x',
      });
      expect(response.status).toBe(401);
      expect(response.json().error_description).toMatch(/client_assertion_type must be/);
    });
  });

  it('a document listing only private_key_jwt: no assertion is 401 invalid_client and no token', async () => {
    const strictId = docs.url('/oauth/strict/client.json');
    docs.json('/oauth/strict/client.json', chatGptDocument(strictId, docs.url('/oauth/jwks.json'), ['private_key_jwt']));
    const { code, verifier } = await authorizeChatGpt(strictId);
    const response = await tokenRequest(code, verifier, undefined, { client_id: strictId });
    expect(response.status).toBe(401);
    expect(response.json()).toMatchObject({
      error: 'invalid_client',
      error_description: expect.stringMatching(/must authenticate with a private_key_jwt client assertion/),
    });
    expect((await server.store.listAccessTokens()).filter((t) => t.clientId === strictId)).toEqual([]);
    const ok = await tokenRequest(code, verifier, await signAssertion(key, { clientId: strictId, audience: tokenEndpoint }));
    expect(ok.status, ok.text).toBe(200);
  });

  it('CIMD: a document that also lists none is served as a public client (PKCE) when no assertion is sent', async () => {
    const { code, verifier } = await authorizeChatGpt();
    const response = await tokenRequest(code, verifier, undefined, { client_id: clientId });
    expect(response.status, response.text).toBe(200);
  });

  it('RFC 7009 §2.1: /revoke accepts a client assertion, and the revoked token stops working on /mcp', async () => {
    const { code, verifier } = await authorizeChatGpt();
    const { access_token } = (await tokenRequest(code, verifier, await signAssertion(key, { clientId, audience: tokenEndpoint }))).json();
    expect(await listToolsOverMcp(server, access_token)).toContain('whoami');
    const wrongKey = await http.postForm('/revoke', {
      token: access_token,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await signAssertion(await createSigningKey('RS256', key.kid), { clientId, audience: `${server.url}/revoke` }),
    });
    expect(wrongKey.status).toBe(401);
    expect((await fetch(`${server.url}/tools`, { headers: { authorization: `Bearer ${access_token}` } })).status).toBe(200);
    const revoked = await http.postForm('/revoke', {
      token: access_token,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await signAssertion(key, { clientId, audience: `${server.url}/revoke` }),
    });
    expect(revoked.status, revoked.text).toBe(200);
    expect((await fetch(`${server.url}/tools`, { headers: { authorization: `Bearer ${access_token}` } })).status).toBe(401);
    expectWellFormedErrors(http);
  });

  it('RFC 7591 §2: a registered client with jwks (or jwks_uri) authenticates with assertions and gets no secret', async () => {
    const own = await createSigningKey('ES256');
    for (const keys of [{ jwks: jwksOf(own) }, { jwks_uri: docs.url('/oauth/jwks.json') }]) {
      const signer = 'jwks' in keys ? own : key;
      const registered = await http.postJson('/register', {
        client_name: 'Agent',
        redirect_uris: ['https://agent.example/cb'],
        token_endpoint_auth_method: 'private_key_jwt',
        ...keys,
      });
      expect(registered.status, registered.text).toBe(201);
      const { client_id: id, client_secret: secret } = registered.json();
      expect(secret).toBeUndefined();
      const { code, verifier } = await authorize(http, { client_id: id, redirect_uri: 'https://agent.example/cb' });
      const refused = await http.postForm('/token', {
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: 'https://agent.example/cb',
        client_id: id,
      });
      expect(refused.status).toBe(401);
      const response = await http.postForm('/token', {
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: 'https://agent.example/cb',
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: await signAssertion(signer, { clientId: id, audience: tokenEndpoint }),
      });
      expect(response.status, response.text).toBe(200);
    }
  });

  it('RFC 7591 §2: registration refuses private_key_jwt without keys, with both, or with a private key', async () => {
    const base = { redirect_uris: ['https://agent.example/cb'], token_endpoint_auth_method: 'private_key_jwt' };
    const privateJwk = { ...key.publicJwk, d: 'AAAA' };
    for (const body of [base, { ...base, jwks: jwksOf(key), jwks_uri: docs.url('/oauth/jwks.json') }, { ...base, jwks: { keys: [privateJwk] } }]) {
      const response = await http.postJson('/register', body);
      expect(response.status).toBe(400);
      expect(response.json().error).toBe('invalid_client_metadata');
    }
  });
});

describe('refresh tokens of a grant issued with private_key_jwt', () => {
  let ca: TestCa;
  let docs: DocumentServer;
  let server: TestServer;
  let http: RecordingHttp;
  let key: SigningKey;
  let clientId: string;

  beforeAll(async () => {
    ca = createTestCa();
    docs = await startDocumentServer(ca);
    key = await createSigningKey('RS256');
    docs.json('/jwks.json', jwksOf(key));
    clientId = docs.url('/chatgpt/client.json');
    docs.json('/chatgpt/client.json', chatGptDocument(clientId, docs.url('/jwks.json')));
    server = await startTestServer({ clientMetadataFetcher: testFetcher(ca), config: { auth: { refreshTokens: true } } });
    http = new RecordingHttp(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await docs?.close();
  });

  it('RFC 6749 §6: are refreshed only with an assertion, even when the document also allows none', async () => {
    const { code, verifier } = await authorize(http, { client_id: clientId, redirect_uri: CHATGPT_REDIRECT });
    const assertion = () => signAssertion(key, { clientId, audience: `${server.url}/token` });
    const issued = await http.postForm('/token', {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: CHATGPT_REDIRECT,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertion(),
    });
    expect(issued.status, issued.text).toBe(200);
    const { refresh_token } = issued.json();
    expect(refresh_token).toEqual(expect.any(String));

    // A stolen refresh token alone, presented as the public side of the same client, is refused.
    const bare = await http.postForm('/token', { grant_type: 'refresh_token', refresh_token, client_id: clientId });
    expect(bare.status).toBe(401);
    expect(bare.json()).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/refresh it with a client assertion/) });

    const refreshed = await http.postForm('/token', {
      grant_type: 'refresh_token',
      refresh_token,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertion(),
    });
    expect(refreshed.status, refreshed.text).toBe(200);
    // The rule follows the grant through rotation.
    const next = await http.postForm('/token', { grant_type: 'refresh_token', refresh_token: refreshed.json().refresh_token, client_id: clientId });
    expect(next.status).toBe(401);
  });

  it('a grant the same client obtained as a public client (no assertion) refreshes as a public client', async () => {
    const { code, verifier } = await authorize(http, { client_id: clientId, redirect_uri: CHATGPT_REDIRECT });
    const issued = await http.postForm('/token', {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: CHATGPT_REDIRECT,
      client_id: clientId,
    });
    expect(issued.status, issued.text).toBe(200);
    const refreshed = await http.postForm('/token', { grant_type: 'refresh_token', refresh_token: issued.json().refresh_token, client_id: clientId });
    expect(refreshed.status, refreshed.text).toBe(200);
  });
});

describe('auth.clientMetadataDocuments: a document the owner pins is used instead of fetching', () => {
  let server: TestServer;
  let key: SigningKey;
  const clientId = 'https://chatgpt.com/oauth/pinned-app/client.json';

  beforeAll(async () => {
    key = await createSigningKey('RS256');
    const document = { ...chatGptDocument(clientId, 'unused'), jwks_uri: undefined, jwks: jwksOf(key) };
    delete document.jwks_uri;
    // The default fetcher cannot reach chatgpt.com from here: the document must come from the config.
    server = await startTestServer({ config: { auth: { clientMetadataDocuments: { [clientId]: document } } } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('ChatGPT signs in with a configured document and a client assertion, with no fetch at all', async () => {
    const http = new RecordingHttp(server.url);
    const { code, verifier } = await authorize(http, { client_id: clientId, redirect_uri: CHATGPT_REDIRECT, resource: `${server.url}/mcp` });
    const response = await http.postForm('/token', {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: CHATGPT_REDIRECT,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await signAssertion(key, { clientId, audience: `${server.url}/token` }),
    });
    expect(response.status, response.text).toBe(200);
    expect(await listToolsOverMcp(server, response.json().access_token)).toContain('whoami');
  });
});
