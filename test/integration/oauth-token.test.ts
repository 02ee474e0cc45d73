import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAccessToken } from '../../src/oauth/tokens.js';
import { createFixedClock } from '../../src/shared/clock.js';
import {
  answerConsent,
  authorize,
  basic,
  CHATGPT_REDIRECT,
  CLAUDE_REDIRECT,
  exchangeWithBasic,
  expectNoSecretsAtRest,
  expectNoServerErrors,
  expectWellFormedErrors,
  obtainTokens,
  openConsent,
  RecordingHttp,
  register,
  registerChatGpt,
  type ReadResponse,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { OWNER_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';

const ACCESS_TOKEN = /^mcp_[0-9a-f]{32}$/;
const SEED_STATE = 'oauth_s_688d6e64f8cc8191b789773d7a93b806';
/** RFC 7636 Appendix B. */
const RFC7636_VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const RFC7636_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

/** RFC 6749 §5.2: a JSON error body with `no-store`. */
function expectTokenError(response: ReadResponse, status: number, error: string): void {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.json()).toMatchObject({ error, error_description: expect.any(String) });
}

/** RFC 6749 §5.1: the successful answer. */
function expectTokenResponse(response: ReadResponse, scope = 'mcp'): { access_token: string; refresh_token?: string } {
  expect(response.status, response.text).toBe(200);
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.headers.get('pragma')).toBe('no-cache');
  const body = response.json();
  expect(body).toMatchObject({ access_token: expect.stringMatching(ACCESS_TOKEN), token_type: 'Bearer', expires_in: 86400, scope });
  return body;
}

describe('POST /token, authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.5)', () => {
  const clock = createFixedClock(Date.UTC(2026, 2, 1, 9));
  let server: TestServer;
  let http: RecordingHttp;
  let chatgpt: RegisteredClient;

  const verify = (token: string) => verifyAccessToken(token, server.app.context);

  beforeAll(async () => {
    server = await startTestServer({ clock });
    http = new RecordingHttp(server.url);
    chatgpt = await registerChatGpt(http);
  });
  afterAll(async () => {
    await server.close();
  });

  it(
    "seed: ChatGPT's exact sequence (discovery, manifest, registration, authorize with " +
      'scope=mcp and state=oauth_s_…, consent, Basic at /token) ends in a 24 h mcp_ token',
    async () => {
      expect((await http.get('/.well-known/oauth-authorization-server')).status).toBe(200);
      expect((await http.get('/.well-known/mcp/manifest.json')).status).toBe(200);
      const client = await register(http, { client_name: 'ChatGPT', redirect_uris: [CHATGPT_REDIRECT] });
      expect(client.token_endpoint_auth_method).toBe('client_secret_basic');

      const { code, redirect, verifier } = await authorize(http, {
        client_id: client.client_id,
        redirect_uri: CHATGPT_REDIRECT,
        state: SEED_STATE,
        scope: 'mcp',
      });
      expect(redirect.searchParams.get('state')).toBe(SEED_STATE);
      expect(redirect.searchParams.get('iss')).toBe(server.url);

      const response = await exchangeWithBasic(http, client, { code, verifier, redirect_uri: CHATGPT_REDIRECT });
      const tokens = expectTokenResponse(response);
      expect(response.json()).not.toHaveProperty('refresh_token');

      const verified = await verify(tokens.access_token);
      expect(verified).toMatchObject({ clientId: client.client_id, scopes: ['mcp'], resource: server.url, expiresAt: clock.now() + 86_400_000 });
    },
  );

  it(
    "ChatGPT's per-connector redirect https://chatgpt.com/connector/oauth/<id> " + 'and its scope-less re-authorization (default scope) both end in tokens',
    async () => {
      const connectorRedirect = 'https://chatgpt.com/connector/oauth/c_6f1e0a8b2d4c';
      const client = await registerChatGpt(http, connectorRedirect);
      const first = await obtainTokens(http, client, { redirect_uri: connectorRedirect, scope: 'mcp' });
      expect(first.scope).toBe('mcp');
      const again = await obtainTokens(http, client, { redirect_uri: connectorRedirect });
      expect(again.scope).toBe('mcp');
      expect(again.access_token).not.toBe(first.access_token);
      await expect(verify(first.access_token)).resolves.toMatchObject({ clientId: client.client_id });
      await expect(verify(again.access_token)).resolves.toMatchObject({ clientId: client.client_id, scopes: ['mcp'] });
    },
  );

  it('Claude: client_secret_post registration with https://claude.ai/api/mcp/auth_callback exchanges its code with the secret in the body', async () => {
    const claude = await register(http, {
      client_name: 'Claude',
      redirect_uris: [CLAUDE_REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const resource = `${server.url}/mcp`;
    const { code, verifier } = await authorize(http, {
      client_id: claude.client_id,
      redirect_uri: CLAUDE_REDIRECT,
      scope: 'mcp',
      resource,
      state: 'claude-state',
    });
    const response = await http.postForm('/token', {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: CLAUDE_REDIRECT,
      resource,
      client_id: claude.client_id,
      client_secret: claude.client_secret,
    });
    const tokens = expectTokenResponse(response);
    await expect(verify(tokens.access_token)).resolves.toMatchObject({ resource });
  });

  it(
    "Claude.ai's authorization request as sent in the wild (scope=claudeai, " + 'resource=<origin>/, prompt=consent) ends in an mcp token for the origin',
    async () => {
      const claude = await register(http, {
        client_name: 'claudeai',
        redirect_uris: [CLAUDE_REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
        scope: 'claudeai',
      });
      const resource = `${server.url}/`;
      const verifier = RFC7636_VERIFIER;
      const form = await openConsent(http, {
        response_type: 'code',
        client_id: claude.client_id,
        redirect_uri: CLAUDE_REDIRECT,
        code_challenge: RFC7636_CHALLENGE,
        code_challenge_method: 'S256',
        state: 'claude-state',
        scope: 'claudeai',
        resource,
        prompt: 'consent',
      });
      const code = (await answerConsent(http, form)).location().searchParams.get('code')!;
      const response = await http.postForm('/token', {
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: CLAUDE_REDIRECT,
        client_id: claude.client_id,
        resource,
      });
      // RFC 6749 §3.3: the granted scope differs from the requested one, so the response says which.
      const tokens = expectTokenResponse(response, 'mcp');
      await expect(verify(tokens.access_token)).resolves.toMatchObject({ resource: server.url, scopes: ['mcp'] });
    },
  );

  it('RFC 8252 §7.3: a public client registered with http://127.0.0.1/callback authorizes on any port and exchanges with that exact URI', async () => {
    const client = await register(http, { client_name: 'CLI', redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none' });
    const redirectUri = 'http://127.0.0.1:49152/callback';
    const { code, redirect, verifier } = await authorize(http, { client_id: client.client_id, redirect_uri: redirectUri, state: 's' });
    expect(`${redirect.origin}${redirect.pathname}`).toBe('http://127.0.0.1:49152/callback');

    // RFC 6749 §4.1.3: the token request repeats the URI as sent, port included.
    const portless = await http.postForm('/token', {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: 'http://127.0.0.1/callback',
      client_id: client.client_id,
    });
    expectTokenError(portless, 400, 'invalid_grant');

    const second = await authorize(http, { client_id: client.client_id, redirect_uri: redirectUri });
    const response = await http.postForm('/token', {
      grant_type: 'authorization_code',
      code: second.code,
      code_verifier: second.verifier,
      redirect_uri: redirectUri,
      client_id: client.client_id,
    });
    expectTokenResponse(response);
  });

  it('RFC 8252 §7.3: the loopback port relaxation does not extend to the path or host', async () => {
    const client = await register(http, { redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none' });
    for (const uri of ['http://127.0.0.1:5000/other', 'http://localhost:5000/callback', 'https://127.0.0.1:5000/callback']) {
      const response = await http.get(
        `/authorize?response_type=code&client_id=${client.client_id}&redirect_uri=${encodeURIComponent(uri)}` +
          `&code_challenge=${RFC7636_CHALLENGE}&code_challenge_method=S256`,
      );
      expect(response.status, uri).toBe(400);
      expect(response.headers.get('location')).toBeNull();
    }
  });

  it('RFC 7636 Appendix B: verifier dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk matches challenge E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', async () => {
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      code_challenge: RFC7636_CHALLENGE,
      code_challenge_method: 'S256',
    });
    const code = (await answerConsent(http, form)).location().searchParams.get('code')!;
    expectTokenResponse(await exchangeWithBasic(http, chatgpt, { code, verifier: RFC7636_VERIFIER }));
  });

  it('RFC 7636 §4.6: a verifier that does not match the challenge is invalid_grant', async () => {
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      code_challenge: RFC7636_CHALLENGE,
      code_challenge_method: 'S256',
    });
    const code = (await answerConsent(http, form)).location().searchParams.get('code')!;
    expectTokenError(await exchangeWithBasic(http, chatgpt, { code, verifier: `${RFC7636_VERIFIER.slice(0, -1)}l` }), 400, 'invalid_grant');
    // The plain method would send the challenge itself as the verifier: refused too.
    const form2 = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      code_challenge: RFC7636_CHALLENGE,
      code_challenge_method: 'S256',
    });
    const code2 = (await answerConsent(http, form2)).location().searchParams.get('code')!;
    expectTokenError(await exchangeWithBasic(http, chatgpt, { code: code2, verifier: RFC7636_CHALLENGE }), 400, 'invalid_grant');
  });

  it('RFC 7636 §4.5: a missing or malformed code_verifier is invalid_request', async () => {
    const { code } = await authorize(http, { client_id: chatgpt.client_id });
    expectTokenError(
      await http.postForm('/token', { grant_type: 'authorization_code', code }, { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) }),
      400,
      'invalid_request',
    );
    expectTokenError(await exchangeWithBasic(http, chatgpt, { code, verifier: 'short' }), 400, 'invalid_request');
    expectTokenError(await exchangeWithBasic(http, chatgpt, { code, verifier: `${'a'.repeat(43)}!` }), 400, 'invalid_request');
  });

  it('RFC 6749 §4.1.2: a replayed code is refused and revokes the tokens it issued', async () => {
    const { code, verifier } = await authorize(http, { client_id: chatgpt.client_id, redirect_uri: CHATGPT_REDIRECT });
    const first = expectTokenResponse(await exchangeWithBasic(http, chatgpt, { code, verifier, redirect_uri: CHATGPT_REDIRECT }));
    await expect(verify(first.access_token)).resolves.toBeTruthy();

    expectTokenError(await exchangeWithBasic(http, chatgpt, { code, verifier, redirect_uri: CHATGPT_REDIRECT }), 400, 'invalid_grant');
    await expect(verify(first.access_token)).rejects.toMatchObject({ reason: 'revoked' });

    await server.events.flush();
    const events = await server.events.readLast(10, { clientId: chatgpt.client_id });
    const types = events.map((e) => e.type);
    expect(types).toContain('code.replayed');
    expect(types).toContain('token.revoked');
  });

  it('RFC 6749 §4.1.2: two concurrent exchanges of one code issue at most one token, and the replay revokes it', async () => {
    for (let i = 0; i < 5; i++) {
      const { code, verifier } = await authorize(http, { client_id: chatgpt.client_id, redirect_uri: CHATGPT_REDIRECT });
      const answers = await Promise.all([0, 1].map(() => exchangeWithBasic(http, chatgpt, { code, verifier, redirect_uri: CHATGPT_REDIRECT })));
      const issued = answers.filter((a) => a.status === 200);
      expect(issued).toHaveLength(1);
      expect(answers.filter((a) => a.status === 400 && a.json().error === 'invalid_grant')).toHaveLength(1);
      await expect(verify(issued[0]!.json().access_token)).rejects.toMatchObject({ reason: 'revoked' });
    }
  });

  it('RFC 6749 §4.1.3: a code issued to another client is invalid_grant', async () => {
    const victim = await registerChatGpt(http);
    const { code, verifier } = await authorize(http, { client_id: victim.client_id, redirect_uri: CHATGPT_REDIRECT });
    expectTokenError(await exchangeWithBasic(http, chatgpt, { code, verifier, redirect_uri: CHATGPT_REDIRECT }), 400, 'invalid_grant');
    // Another client's attempt neither spends the code nor, once it is used, revokes what it issued.
    const issued = expectTokenResponse(await exchangeWithBasic(http, victim, { code, verifier, redirect_uri: CHATGPT_REDIRECT }));
    expectTokenError(await exchangeWithBasic(http, chatgpt, { code, verifier, redirect_uri: CHATGPT_REDIRECT }), 400, 'invalid_grant');
    await expect(verify(issued.access_token)).resolves.toMatchObject({ clientId: victim.client_id });
    // A public client naming the victim's id without its secret is not the victim either.
    const thief = await register(http, { redirect_uris: [CHATGPT_REDIRECT], token_endpoint_auth_method: 'none' });
    const second = await authorize(http, { client_id: victim.client_id, redirect_uri: CHATGPT_REDIRECT });
    expectTokenError(
      await http.postForm('/token', {
        grant_type: 'authorization_code',
        code: second.code,
        code_verifier: second.verifier,
        redirect_uri: CHATGPT_REDIRECT,
        client_id: thief.client_id,
      }),
      400,
      'invalid_grant',
    );
  });

  it('RFC 6749 §4.1.3: a redirect_uri different from the one at /authorize, or missing when one was sent, is invalid_grant', async () => {
    const connector = 'https://chatgpt.com/connector/oauth/two';
    const client = await register(http, { redirect_uris: [CHATGPT_REDIRECT, connector] });
    const a = await authorize(http, { client_id: client.client_id, redirect_uri: CHATGPT_REDIRECT });
    expectTokenError(await exchangeWithBasic(http, client, { code: a.code, verifier: a.verifier, redirect_uri: connector }), 400, 'invalid_grant');
    const b = await authorize(http, { client_id: client.client_id, redirect_uri: CHATGPT_REDIRECT });
    expectTokenError(await exchangeWithBasic(http, client, { code: b.code, verifier: b.verifier }), 400, 'invalid_grant');
  });

  it('RFC 6749 §4.1.3: an unknown code is invalid_grant', async () => {
    expectTokenError(await exchangeWithBasic(http, chatgpt, { code: 'x'.repeat(43), verifier: RFC7636_VERIFIER }), 400, 'invalid_grant');
    expectTokenError(await exchangeWithBasic(http, chatgpt, { code: 'x'.repeat(5000), verifier: RFC7636_VERIFIER }), 400, 'invalid_grant');
  });

  it('RFC 6749 §4.1.2: an expired code (older than 5 minutes) is invalid_grant', async () => {
    const { code, verifier } = await authorize(http, { client_id: chatgpt.client_id, redirect_uri: CHATGPT_REDIRECT });
    clock.advance(5 * 60_000 + 1);
    expectTokenError(await exchangeWithBasic(http, chatgpt, { code, verifier, redirect_uri: CHATGPT_REDIRECT }), 400, 'invalid_grant');
  });

  it('RFC 8707 §2.2: a resource at /token must repeat the authorized one', async () => {
    const resource = `${server.url}/mcp`;
    const a = await authorize(http, { client_id: chatgpt.client_id, resource });
    expectTokenError(
      await http.postForm(
        '/token',
        { grant_type: 'authorization_code', code: a.code, code_verifier: a.verifier, resource: `${server.url}/sse` },
        { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
      ),
      400,
      'invalid_target',
    );
    const b = await authorize(http, { client_id: chatgpt.client_id, resource });
    expectTokenError(
      await http.postForm(
        '/token',
        { grant_type: 'authorization_code', code: b.code, code_verifier: b.verifier, resource: 'https://evil.example/mcp' },
        { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
      ),
      400,
      'invalid_target',
    );
    const c = await authorize(http, { client_id: chatgpt.client_id, resource });
    const ok = await http.postForm(
      '/token',
      { grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, resource },
      { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
    );
    await expect(verify(expectTokenResponse(ok).access_token)).resolves.toMatchObject({ resource });
  });

  it('RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64 (every character percent-encoded still authenticates)', async () => {
    const { code, verifier } = await authorize(http, { client_id: chatgpt.client_id });
    const percentAll = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).join('');
    const header = `Basic ${Buffer.from(`${percentAll(chatgpt.client_id)}:${percentAll(chatgpt.client_secret!)}`).toString('base64')}`;
    expectTokenResponse(await http.postForm('/token', { grant_type: 'authorization_code', code, code_verifier: verifier }, { authorization: header }));
    // The encoding the RFC asks for leaves a UUID and a hex secret unchanged: what the SDK and ChatGPT send.
    expect(basic(chatgpt.client_id, chatgpt.client_secret!, { encode: true })).toBe(basic(chatgpt.client_id, chatgpt.client_secret!));
  });

  it('RFC 6749 §2.3.1: a Basic password with a form-encoded colon, plus and percent is decoded before comparison', async () => {
    // The secret is hex, so these decode to something else and must fail as invalid_client, never 500.
    for (const secret of [`${chatgpt.client_secret}%3A`, `${chatgpt.client_secret}+`, '%zz', '%', '%E0%A4%A']) {
      const response = await http.postForm(
        '/token',
        { grant_type: 'authorization_code', code: 'x', code_verifier: RFC7636_VERIFIER },
        { authorization: basic(chatgpt.client_id, secret) },
      );
      expectTokenError(response, 401, 'invalid_client');
      expect(response.headers.get('www-authenticate')).toMatch(/^Basic\b/);
    }
  });

  it.each([
    ['a wrong secret', () => basic(chatgpt.client_id, 'f'.repeat(64))],
    ['an unknown client', () => basic('00000000-0000-4000-8000-000000000000', 'f'.repeat(64))],
    ['no colon', () => `Basic ${Buffer.from(chatgpt.client_id).toString('base64')}`],
    ['not base64', () => 'Basic !!!not-base64!!!'],
    ['no credentials', () => 'Basic'],
    ['an empty secret', () => basic(chatgpt.client_id, '')],
  ])('RFC 6749 §5.2: Basic with %s is 401 invalid_client with WWW-Authenticate: Basic', async (_what, header) => {
    const { code, verifier } = await authorize(http, { client_id: chatgpt.client_id });
    const response = await http.postForm('/token', { grant_type: 'authorization_code', code, code_verifier: verifier }, { authorization: header() });
    expectTokenError(response, 401, 'invalid_client');
    expect(response.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });

  it(
    'RFC 6749 §5.2 + RFC 9110 §11.6.1: client_secret_post with a wrong secret, or ' +
      'a confidential client without one, is 401 invalid_client with a challenge',
    async () => {
      const wrong = await http.postForm('/token', {
        grant_type: 'authorization_code',
        code: 'x',
        code_verifier: RFC7636_VERIFIER,
        client_id: chatgpt.client_id,
        client_secret: 'f'.repeat(64),
      });
      const none = await http.postForm('/token', {
        grant_type: 'authorization_code',
        code: 'x',
        code_verifier: RFC7636_VERIFIER,
        client_id: chatgpt.client_id,
      });
      const nobody = await http.postForm('/token', { grant_type: 'authorization_code', code: 'x', code_verifier: RFC7636_VERIFIER });
      const unknown = await http.postForm('/token', { grant_type: 'authorization_code', code: 'x', code_verifier: RFC7636_VERIFIER, client_id: 'nobody' });
      for (const response of [wrong, none, nobody, unknown]) {
        expectTokenError(response, 401, 'invalid_client');
        expect(response.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      }
    },
  );

  it('RFC 6749 §5.2: a public client presenting a secret, or using Basic, is 401 invalid_client', async () => {
    const client = await register(http, { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' });
    expectTokenError(
      await http.postForm('/token', {
        grant_type: 'authorization_code',
        code: 'x',
        code_verifier: RFC7636_VERIFIER,
        client_id: client.client_id,
        client_secret: 'anything',
      }),
      401,
      'invalid_client',
    );
    expectTokenError(
      await http.postForm(
        '/token',
        { grant_type: 'authorization_code', code: 'x', code_verifier: RFC7636_VERIFIER },
        { authorization: basic(client.client_id, '') },
      ),
      401,
      'invalid_client',
    );
  });

  it('RFC 6749 §2.3.1: Basic with the same client_id repeated in the body is accepted', async () => {
    const { code, verifier } = await authorize(http, { client_id: chatgpt.client_id });
    const response = await http.postForm(
      '/token',
      { grant_type: 'authorization_code', code, code_verifier: verifier, client_id: chatgpt.client_id },
      { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
    );
    expectTokenResponse(response);
  });

  it('RFC 6749 §2.3: credentials in both the header and the body are refused', async () => {
    const response = await http.postForm(
      '/token',
      { grant_type: 'authorization_code', code: 'x', code_verifier: RFC7636_VERIFIER, client_id: chatgpt.client_id, client_secret: chatgpt.client_secret },
      { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
    );
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(response.json().error).toMatch(/^invalid_(request|client)$/);
  });

  it('RFC 6749 §5.2: a missing grant_type is invalid_request; an unknown one, or refresh_token while refresh is off, is unsupported_grant_type', async () => {
    const auth = { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) };
    expectTokenError(await http.postForm('/token', { code: 'x' }, auth), 400, 'invalid_request');
    expectTokenError(await http.postForm('/token', { grant_type: 'password', username: 'a', password: 'b' }, auth), 400, 'unsupported_grant_type');
    expectTokenError(await http.postForm('/token', { grant_type: 'client_credentials' }, auth), 400, 'unsupported_grant_type');
    expectTokenError(await http.postForm('/token', { grant_type: 'refresh_token', refresh_token: 'mcpr_x' }, auth), 400, 'unsupported_grant_type');
  });

  it('RFC 6749 §3.2: a repeated parameter is invalid_request', async () => {
    const body = new URLSearchParams([
      ['grant_type', 'authorization_code'],
      ['code', 'a'],
      ['code', 'b'],
      ['code_verifier', RFC7636_VERIFIER],
    ]);
    const response = await http.request('/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
      body,
    });
    expectTokenError(response, 400, 'invalid_request');
  });

  it('DESIGN.md §4: /token also accepts a JSON body', async () => {
    const { code, verifier } = await authorize(http, { client_id: chatgpt.client_id });
    const response = await http.postJson(
      '/token',
      { grant_type: 'authorization_code', code, code_verifier: verifier },
      { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
    );
    expectTokenResponse(response);
  });

  it('DESIGN.md §4: a JSON body with non-string parameters is 400 invalid_request', async () => {
    const response = await http.postJson(
      '/token',
      { grant_type: 'authorization_code', code: { $ne: null }, code_verifier: [RFC7636_VERIFIER] },
      { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
    );
    expectTokenError(response, 400, 'invalid_request');
  });

  it('DESIGN.md §4: malformed JSON at /token is 400 with a JSON error', async () => {
    const response = await http.request('/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('DESIGN.md §4: a body over 1 MB at /token is 413 with a JSON error', async () => {
    const response = await http.postForm(
      '/token',
      { grant_type: 'authorization_code', code: 'x'.repeat(1_100_000) },
      { authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
    );
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.json().error).toEqual(expect.any(String));
  });

  it('RFC 6749 §3.2: a body that is neither form-urlencoded nor JSON is 400 invalid_request', async () => {
    const response = await http.request('/token', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: basic(chatgpt.client_id, chatgpt.client_secret!) },
      body: 'grant_type=authorization_code',
    });
    expectTokenError(response, 400, 'invalid_request');
  });

  it('RFC 6750 §3: the access token expires after 24 h (expires_in 86400)', async () => {
    const tokens = await obtainTokens(http, chatgpt);
    clock.advance(86_400_000 - 1);
    await expect(verify(tokens.access_token)).resolves.toBeTruthy();
    clock.advance(1);
    await expect(verify(tokens.access_token)).rejects.toMatchObject({ reason: 'expired' });
  });

  it('DESIGN.md §7: token.issued is logged with the token id, never the token', async () => {
    const client = await registerChatGpt(http);
    const tokens = await obtainTokens(http, client);
    await server.events.flush();
    const [issued] = await server.events.readLast(1, { types: ['token.issued'], clientId: client.client_id });
    const verified = await verify(tokens.access_token);
    expect(issued?.token_id).toBe(verified.tokenId);
    expect(issued?.token_id).toMatch(/^tok_[0-9a-f]{12}$/);
    expect(JSON.stringify(issued)).not.toContain(tokens.access_token);
  });

  it('DESIGN.md §4: no /token response was a 5xx or carried a stack trace', () => {
    expectNoServerErrors(http);
  });

  it('RFC 6749 §5.2 + §4.1.2.1: every error code and error_description uses only the allowed characters', () => {
    expectWellFormedErrors(http);
  });

  it('DESIGN.md §6: db.json and events.jsonl contain none of the secrets, codes, tokens or passwords seen', async () => {
    http.secret(OWNER_PASSWORD);
    await expectNoSecretsAtRest(server, http.secrets);
  });
});

describe('POST /token, refresh_token grant with auth.refreshTokens on (OAuth 2.1 §4.3, fixed clock)', () => {
  const clock = createFixedClock(Date.UTC(2026, 3, 1, 9));
  let server: TestServer;
  let http: RecordingHttp;
  let claude: RegisteredClient;

  const verify = (token: string) => verifyAccessToken(token, server.app.context);
  const refresh = (refreshToken: string, extra: Record<string, string> = {}, client = claude) =>
    http.postForm('/token', {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: client.client_id,
      client_secret: client.client_secret,
      ...extra,
    });

  beforeAll(async () => {
    server = await startTestServer({ clock, config: { auth: { refreshTokens: true } } });
    http = new RecordingHttp(server.url);
    claude = await register(http, {
      client_name: 'Claude',
      redirect_uris: [CLAUDE_REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_post',
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it('RFC 7591 §3.2.1: with refresh tokens on, the refresh_token grant is registered', () => {
    expect(claude.grant_types).toEqual(['authorization_code', 'refresh_token']);
  });

  it('RFC 6749 §5.1: a client registered for refresh_token receives one with its access token', async () => {
    const tokens = await obtainTokens(http, claude, { scope: 'mcp offline_access' });
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(tokens.scope).toBe('mcp offline_access');
  });

  it('RFC 7591 §2: a client that did not register the refresh_token grant receives no refresh token', async () => {
    const chatgpt = await registerChatGpt(http);
    const tokens = await obtainTokens(http, chatgpt);
    expect(tokens).not.toHaveProperty('refresh_token');
  });

  it('RFC 6749 §3.3: a client that gets no refresh token is not told offline_access was granted', async () => {
    const chatgpt = await registerChatGpt(http);
    const tokens = await obtainTokens(http, chatgpt, { scope: 'mcp offline_access' });
    expect(tokens).not.toHaveProperty('refresh_token');
    expect(tokens.scope).toBe('mcp');
    await expect(verify(tokens.access_token)).resolves.toMatchObject({ scopes: ['mcp'] });
  });

  it(
    'OAuth 2.1 §4.3.1: each refresh rotates the refresh token; the previous one works ' +
      'for 60 s, and a reuse after that revokes the whole family (token.reuse_detected)',
    async () => {
      const initial = await obtainTokens(http, claude);
      const r0 = initial.refresh_token!;

      const first = expectTokenResponse(await refresh(r0));
      const r1 = first.refresh_token!;
      expect(r1).toEqual(expect.any(String));
      expect(r1).not.toBe(r0);
      expect(first.access_token).not.toBe(initial.access_token);
      await expect(verify(first.access_token)).resolves.toMatchObject({ clientId: claude.client_id });

      // Grace: a racing second use of r0 inside 60 s still works (several egress nodes).
      clock.advance(59_000);
      const racing = expectTokenResponse(await refresh(r0));
      expect(racing.refresh_token).toEqual(expect.any(String));

      // r1 keeps rotating normally.
      const second = expectTokenResponse(await refresh(r1));
      const r2 = second.refresh_token!;

      // After the grace window, presenting r0 again is a reuse: the whole grant goes.
      clock.advance(2_000);
      expectTokenError(await refresh(r0), 400, 'invalid_grant');
      for (const access of [initial.access_token, first.access_token, racing.access_token, second.access_token]) {
        await expect(verify(access)).rejects.toMatchObject({ reason: 'revoked' });
      }
      expectTokenError(await refresh(r2), 400, 'invalid_grant');
      expectTokenError(await refresh(racing.refresh_token!), 400, 'invalid_grant');

      await server.events.flush();
      const events = await server.events.readLast(100, { clientId: claude.client_id });
      expect(events.filter((e) => e.type === 'token.refreshed').length).toBeGreaterThanOrEqual(3);
      const reuse = events.filter((e) => e.type === 'token.reuse_detected');
      expect(reuse).toHaveLength(1);
      expect(events.filter((e) => e.type === 'token.revoked').length).toBeGreaterThanOrEqual(4);
    },
  );

  it('RFC 6749 §6: a refresh may narrow the scope but not widen it', async () => {
    const tokens = await obtainTokens(http, claude, { scope: 'mcp offline_access' });
    expectTokenError(await refresh(tokens.refresh_token!, { scope: 'mcp admin' }), 400, 'invalid_scope');
    const narrowed = expectTokenResponse(await refresh(tokens.refresh_token!, { scope: 'mcp' }));
    expect(narrowed.refresh_token).toEqual(expect.any(String));
  });

  it('RFC 6749 §6: a refresh token is bound to the client it was issued to', async () => {
    const tokens = await obtainTokens(http, claude);
    const other = await register(http, {
      redirect_uris: [CLAUDE_REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    expectTokenError(await refresh(tokens.refresh_token!, {}, other), 400, 'invalid_grant');
    // The failed attempt by another client did not spend it.
    expectTokenResponse(await refresh(tokens.refresh_token!));
  });

  it('RFC 6749 §6: an unknown refresh token, or none, is refused', async () => {
    expectTokenError(await refresh('mcpr_unknown'), 400, 'invalid_grant');
    expectTokenError(
      await http.postForm('/token', { grant_type: 'refresh_token', client_id: claude.client_id, client_secret: claude.client_secret }),
      400,
      'invalid_request',
    );
  });

  it('RFC 6749 §6: an expired refresh token (30 days) is invalid_grant', async () => {
    const tokens = await obtainTokens(http, claude);
    clock.advance(30 * 86_400_000 + 1);
    expectTokenError(await refresh(tokens.refresh_token!), 400, 'invalid_grant');
  });

  it('DESIGN.md §4: no refresh response was a 5xx or carried a stack trace', () => {
    expectNoServerErrors(http);
  });

  it('RFC 6749 §5.2 + §4.1.2.1: every error code and error_description uses only the allowed characters', () => {
    expectWellFormedErrors(http);
  });

  it('DESIGN.md §6: db.json and events.jsonl contain none of the refresh or access tokens seen', async () => {
    http.secret(OWNER_PASSWORD);
    expect([...http.secrets].some((s) => s.startsWith('mcpr_') || /^[A-Za-z0-9_-]{40,}$/.test(s))).toBe(true);
    await expectNoSecretsAtRest(server, http.secrets);
  });
});
