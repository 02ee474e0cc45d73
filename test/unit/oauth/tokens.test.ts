import { describe, expect, it } from 'vitest';
import { issueAuthorizationCode, validateAuthorizationRequest } from '../../../src/oauth/authorization.js';
import { InvalidGrantError, InvalidRequestError } from '../../../src/oauth/errors.js';
import { registerClient } from '../../../src/oauth/registration.js';
import { hashSecret } from '../../../src/oauth/secrets.js';
import { exchangeAuthorizationCode, refreshAccessToken, revokeToken, verifyAccessToken, type OAuthDeps } from '../../../src/oauth/tokens.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import { tokenIdFromHash } from '../../../src/shared/ids.js';
import type { AuthEvent, EventLog, NewEvent } from '../../../src/store/event-log.js';
import { createMemoryStore } from '../../../src/store/memory-store.js';
import type { ClientRecord } from '../../../src/store/types.js';
import { BASE, testSettings } from './settings.js';

const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const REDIRECT = 'https://claude.ai/api/mcp/auth_callback';

function memoryEvents(): EventLog & { all: NewEvent[] } {
  const all: NewEvent[] = [];
  return {
    all,
    record: (event) => void all.push(event),
    flush: async () => {},
    close: async () => {},
    readLast: async () => [] as AuthEvent[],
    follow: () => () => {},
  };
}

async function setup(refreshTokens = false) {
  const store = createMemoryStore();
  const clock = createFixedClock();
  const events = memoryEvents();
  const deps: OAuthDeps = { store, clock, events, settings: testSettings({ refreshTokens }) };
  const register = async (extra: Record<string, unknown> = {}): Promise<ClientRecord> => {
    const { response } = await registerClient({ redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], ...extra }, deps);
    return (await store.getClient(response.client_id))!;
  };
  const client = await register();
  const codeFor = async (c: ClientRecord, params: Record<string, string> = {}) => {
    const request = await validateAuthorizationRequest(
      { response_type: 'code', client_id: c.clientId, redirect_uri: REDIRECT, code_challenge: CHALLENGE, code_challenge_method: 'S256', ...params },
      deps,
    );
    return (await issueAuthorizationCode(request, deps)).code;
  };
  return { store, clock, events, deps, client, register, codeFor };
}

describe('authorization code exchange (RFC 6749 §4.1.3, RFC 7636 §4.6)', () => {
  it('issues an mcp_ token with a 24 h lifetime and stores only its hash', async () => {
    const { deps, client, codeFor, store, events } = await setup();
    const response = await exchangeAuthorizationCode(client, { code: await codeFor(client), codeVerifier: VERIFIER, redirectUri: REDIRECT }, deps, {
      ip: '203.0.113.7',
    });
    expect(response).toEqual({ access_token: expect.stringMatching(/^mcp_[0-9a-f]{32}$/), token_type: 'Bearer', expires_in: 86400, scope: 'mcp' });
    const [record] = await store.listAccessTokens();
    expect(record?.tokenHash).toBe(hashSecret(response.access_token));
    expect(record?.id).toBe(tokenIdFromHash(record!.tokenHash));
    expect(JSON.stringify(record)).not.toContain(response.access_token);
    expect(events.all).toContainEqual(expect.objectContaining({ type: 'token.issued', client_id: client.clientId, token_id: record!.id, ip: '203.0.113.7' }));
  });

  it('RFC 6749 §4.1.2: a replayed code is refused and revokes the tokens it issued', async () => {
    const { deps, client, codeFor, events } = await setup();
    const code = await codeFor(client);
    const first = await exchangeAuthorizationCode(client, { code, codeVerifier: VERIFIER, redirectUri: REDIRECT }, deps, {});
    await expect(exchangeAuthorizationCode(client, { code, codeVerifier: VERIFIER, redirectUri: REDIRECT }, deps, {})).rejects.toBeInstanceOf(
      InvalidGrantError,
    );
    await expect(verifyAccessToken(first.access_token, deps)).rejects.toMatchObject({ reason: 'revoked' });
    expect(events.all.map((e) => e.type)).toEqual(expect.arrayContaining(['code.replayed', 'token.revoked']));
  });

  it.each<[string, (ctx: { other: ClientRecord }) => { client?: ClientRecord; redirectUri?: string; codeVerifier?: string; advance?: number }]>([
    ['issued to another client', ({ other }) => ({ client: other })],
    ['with another redirect_uri', () => ({ redirectUri: 'https://claude.ai/other' })],
    ['without the redirect_uri sent at /authorize', () => ({ redirectUri: undefined as unknown as string })],
    ['with a wrong verifier', () => ({ codeVerifier: `${VERIFIER.slice(0, -1)}A` })],
    ['after 5 minutes', () => ({ advance: 300_000 })],
  ])('RFC 6749 §4.1.3: a code presented %s is invalid_grant', async (_what, tweak) => {
    const { deps, client, codeFor, register, clock } = await setup();
    const other = await register();
    const code = await codeFor(client);
    const t = tweak({ other });
    clock.advance(t.advance ?? 0);
    const redirectUri = 'redirectUri' in t ? t.redirectUri : REDIRECT;
    await expect(
      exchangeAuthorizationCode(t.client ?? client, { code, codeVerifier: t.codeVerifier ?? VERIFIER, redirectUri }, deps, {}),
    ).rejects.toBeInstanceOf(InvalidGrantError);
  });

  it('RFC 7636 §4.5: a missing or malformed verifier is invalid_request', async () => {
    const { deps, client, codeFor } = await setup();
    const code = await codeFor(client);
    await expect(exchangeAuthorizationCode(client, { code, redirectUri: REDIRECT }, deps, {})).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(exchangeAuthorizationCode(client, { code, codeVerifier: 'x', redirectUri: REDIRECT }, deps, {})).rejects.toBeInstanceOf(InvalidRequestError);
  });
});

describe('refresh token rotation (OAuth 2.1 §4.3.1, DESIGN.md §4)', () => {
  it('rotates on each use, honours the previous token for 60 s, then treats its reuse as theft and revokes the family', async () => {
    const { deps, client, codeFor, clock, events } = await setup(true);
    const first = await exchangeAuthorizationCode(client, { code: await codeFor(client), codeVerifier: VERIFIER, redirectUri: REDIRECT }, deps, {});
    const r0 = first.refresh_token!;
    expect(r0).toEqual(expect.any(String));

    const second = await refreshAccessToken(client, { refreshToken: r0 }, deps, {});
    expect(second.refresh_token).not.toBe(r0);
    clock.advance(60_000);
    const racing = await refreshAccessToken(client, { refreshToken: r0 }, deps, {});
    expect(racing.access_token).toMatch(/^mcp_/);

    clock.advance(1);
    await expect(refreshAccessToken(client, { refreshToken: r0 }, deps, {})).rejects.toBeInstanceOf(InvalidGrantError);
    for (const token of [first, second, racing]) await expect(verifyAccessToken(token.access_token, deps)).rejects.toMatchObject({ reason: 'revoked' });
    await expect(refreshAccessToken(client, { refreshToken: second.refresh_token! }, deps, {})).rejects.toBeInstanceOf(InvalidGrantError);
    expect(events.all.filter((e) => e.type === 'token.reuse_detected')).toHaveLength(1);
  });

  it('is refused for a client without the refresh_token grant, and when refresh tokens are off', async () => {
    const off = await setup(false);
    await expect(refreshAccessToken(off.client, { refreshToken: 'mcpr_x' }, off.deps, {})).rejects.toMatchObject({ errorCode: 'unauthorized_client' });
    const on = await setup(true);
    const noRefresh = await on.register({ grant_types: ['authorization_code'] });
    await expect(refreshAccessToken(noRefresh, { refreshToken: 'mcpr_x' }, on.deps, {})).rejects.toMatchObject({ errorCode: 'unauthorized_client' });
  });
});

describe('revocation (RFC 7009) and verification (RFC 6750, RFC 8707 audience)', () => {
  it('RFC 7009 §2.1: revoking an access token makes verification fail; an unknown token is not an error', async () => {
    const { deps, client, codeFor } = await setup();
    const tokens = await exchangeAuthorizationCode(client, { code: await codeFor(client), codeVerifier: VERIFIER, redirectUri: REDIRECT }, deps, {});
    await expect(verifyAccessToken(tokens.access_token, deps)).resolves.toMatchObject({ clientId: client.clientId, scopes: ['mcp'], resource: BASE });
    await revokeToken(client, { token: tokens.access_token }, deps, {});
    await expect(verifyAccessToken(tokens.access_token, deps)).rejects.toMatchObject({ reason: 'revoked' });
    await expect(revokeToken(client, { token: 'mcp_ffffffffffffffffffffffffffffffff' }, deps, {})).resolves.toBeUndefined();
  });

  it.each([
    [undefined, 'missing'],
    ['', 'missing'],
    ['Bearer mcp_0123', 'malformed'],
    ['mcp_0123456789ABCDEF0123456789abcdef', 'malformed'],
    ['mcp_0123456789abcdef0123456789abcdef', 'unknown'],
  ])('RFC 6750 §3.1: %j is rejected as %s', async (token, reason) => {
    const { deps } = await setup();
    await expect(verifyAccessToken(token, deps)).rejects.toMatchObject({ reason, errorCode: 'invalid_token', status: 401 });
  });

  it('RFC 6750 §3.1: an expired token is rejected; RFC 8707: a token for another audience is rejected', async () => {
    const { deps, client, codeFor, clock, store } = await setup();
    const tokens = await exchangeAuthorizationCode(client, { code: await codeFor(client), codeVerifier: VERIFIER, redirectUri: REDIRECT }, deps, {});
    clock.advance(86_400_000);
    await expect(verifyAccessToken(tokens.access_token, deps)).rejects.toMatchObject({ reason: 'expired' });

    const foreign = 'mcp_0123456789abcdef0123456789abcdef';
    const hash = hashSecret(foreign);
    await store.saveTokens({
      id: tokenIdFromHash(hash),
      tokenHash: hash,
      clientId: client.clientId,
      grantId: 'g',
      scopes: ['mcp'],
      resource: 'https://other.example/mcp',
      createdAt: clock.now(),
      expiresAt: clock.now() + 1000,
      lastUsedAt: null,
      revokedAt: null,
    });
    await expect(verifyAccessToken(foreign, deps)).rejects.toMatchObject({ reason: 'wrong audience' });
  });
});
