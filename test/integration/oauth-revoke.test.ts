import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAccessToken } from '../../src/oauth/tokens.js';
import {
  basic,
  CLAUDE_REDIRECT,
  expectNoSecretsAtRest,
  expectNoServerErrors,
  expectWellFormedErrors,
  obtainTokens,
  RecordingHttp,
  register,
  registerChatGpt,
  type ReadResponse,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { OWNER_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';

function expectRevoked(response: ReadResponse): void {
  expect(response.status, response.text).toBe(200);
  expect(response.headers.get('cache-control')).toBe('no-store');
}

describe('POST /revoke (RFC 7009)', () => {
  let server: TestServer;
  let http: RecordingHttp;
  let chatgpt: RegisteredClient;
  let claude: RegisteredClient;

  const verify = (token: string) => verifyAccessToken(token, server.app.context);
  const revokeBasic = (client: RegisteredClient, form: Record<string, string | undefined>) =>
    http.postForm('/revoke', form, { authorization: basic(client.client_id, client.client_secret!) });

  beforeAll(async () => {
    server = await startTestServer({ config: { auth: { refreshTokens: true } } });
    http = new RecordingHttp(server.url);
    chatgpt = await registerChatGpt(http);
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

  it('RFC 7009 §2.1: a revoked access token stops verifying, and the revocation is logged as token.revoked', async () => {
    const tokens = await obtainTokens(http, chatgpt);
    const { tokenId } = await verify(tokens.access_token);
    expectRevoked(await revokeBasic(chatgpt, { token: tokens.access_token, token_type_hint: 'access_token' }));
    await expect(verify(tokens.access_token)).rejects.toMatchObject({ reason: 'revoked' });
    await server.events.flush();
    const [event] = await server.events.readLast(1, { types: ['token.revoked'], clientId: chatgpt.client_id });
    expect(event?.token_id).toBe(tokenId);
  });

  it('RFC 7009 §2.1: client_secret_post authenticates at /revoke too', async () => {
    const tokens = await obtainTokens(http, claude);
    expectRevoked(await http.postForm('/revoke', { token: tokens.access_token, client_id: claude.client_id, client_secret: claude.client_secret }));
    await expect(verify(tokens.access_token)).rejects.toMatchObject({ reason: 'revoked' });
  });

  it('RFC 7009 §2.1: a public client revokes its own token with its client_id', async () => {
    const client = await register(http, { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' });
    const tokens = await obtainTokens(http, client);
    expectRevoked(await http.postForm('/revoke', { token: tokens.access_token, client_id: client.client_id }));
    await expect(verify(tokens.access_token)).rejects.toMatchObject({ reason: 'revoked' });
  });

  it('RFC 7009 §2.1: revoking a refresh token also invalidates the access tokens of its grant', async () => {
    const tokens = await obtainTokens(http, claude);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expectRevoked(
      await http.postForm('/revoke', {
        token: tokens.refresh_token,
        token_type_hint: 'refresh_token',
        client_id: claude.client_id,
        client_secret: claude.client_secret,
      }),
    );
    await expect(verify(tokens.access_token)).rejects.toMatchObject({ reason: 'revoked' });
    const refresh = await http.postForm('/token', {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: claude.client_id,
      client_secret: claude.client_secret,
    });
    expect(refresh.status).toBe(400);
    expect(refresh.json().error).toBe('invalid_grant');
  });

  it('RFC 7009 §2.2: an unknown token answers 200', async () => {
    expectRevoked(await revokeBasic(chatgpt, { token: 'mcp_00000000000000000000000000000000' }));
    expectRevoked(await revokeBasic(chatgpt, { token: 'garbage' }));
    expectRevoked(await revokeBasic(chatgpt, { token: 'x'.repeat(4000) }));
  });

  it('RFC 7009 §2.2: revoking an already revoked token answers 200', async () => {
    const tokens = await obtainTokens(http, chatgpt);
    expectRevoked(await revokeBasic(chatgpt, { token: tokens.access_token }));
    expectRevoked(await revokeBasic(chatgpt, { token: tokens.access_token }));
  });

  it('RFC 7009 §2.1: an unknown or mistaken token_type_hint is ignored', async () => {
    const tokens = await obtainTokens(http, chatgpt);
    expectRevoked(await revokeBasic(chatgpt, { token: tokens.access_token, token_type_hint: 'refresh_token' }));
    await expect(verify(tokens.access_token)).rejects.toMatchObject({ reason: 'revoked' });
    const more = await obtainTokens(http, chatgpt);
    expectRevoked(await revokeBasic(chatgpt, { token: more.access_token, token_type_hint: 'id_token' }));
    await expect(verify(more.access_token)).rejects.toMatchObject({ reason: 'revoked' });
  });

  it("RFC 7009 §2.1: a client cannot revoke another client's token", async () => {
    const tokens = await obtainTokens(http, chatgpt);
    const response = await http.postForm('/revoke', { token: tokens.access_token, client_id: claude.client_id, client_secret: claude.client_secret });
    // "the request is refused and the client is informed of the error"
    expect(response.status).toBe(400);
    expect(response.json().error).toBe('invalid_request');
    await expect(verify(tokens.access_token)).resolves.toMatchObject({ clientId: chatgpt.client_id });
  });

  it('RFC 7009 §2.1: the revocation request is authenticated like /token (401 invalid_client, Basic challenge)', async () => {
    const tokens = await obtainTokens(http, chatgpt);
    const wrong = await http.postForm('/revoke', { token: tokens.access_token }, { authorization: basic(chatgpt.client_id, 'f'.repeat(64)) });
    expect(wrong.status).toBe(401);
    expect(wrong.json().error).toBe('invalid_client');
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic\b/);
    const anonymous = await http.postForm('/revoke', { token: tokens.access_token });
    expect(anonymous.status).toBe(401);
    expect(anonymous.json().error).toBe('invalid_client');
    await expect(verify(tokens.access_token)).resolves.toBeTruthy();
  });

  it('RFC 7009 §2.1: a request without the token parameter is invalid_request', async () => {
    const response = await revokeBasic(chatgpt, {});
    expect(response.status).toBe(400);
    expect(response.json().error).toBe('invalid_request');
  });

  it('DESIGN.md §4: malformed JSON and oversized bodies at /revoke are 400 and 413 JSON errors', async () => {
    const malformed = await http.request('/revoke', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(malformed.status).toBe(400);
    expect(malformed.json().error).toBe('invalid_request');
    const big = await revokeBasic(chatgpt, { token: 'y'.repeat(1_100_000) });
    expect(big.status).toBe(413);
    expect(big.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('DESIGN.md §4: /revoke answers CORS preflight', async () => {
    const response = await http.request('/revoke', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-headers')).toMatch(/Authorization/i);
  });

  it('DESIGN.md §4: no /revoke response was a 5xx or carried a stack trace', () => {
    expectNoServerErrors(http);
  });

  it('RFC 6749 §5.2 + §4.1.2.1: every error code and error_description uses only the allowed characters', () => {
    expectWellFormedErrors(http);
  });

  it('DESIGN.md §6: db.json and events.jsonl contain none of the tokens seen', async () => {
    http.secret(OWNER_PASSWORD);
    await expectNoSecretsAtRest(server, http.secrets);
  });
});
