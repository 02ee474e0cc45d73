import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneAbandonedClients } from '../../src/oauth/client-pruning.js';
import { removeClient, revokeTokens } from '../../src/oauth/revoke.js';
import { createFixedClock } from '../../src/shared/clock.js';
import type { AuthEvent } from '../../src/store/event-log.js';
import { authorize, exchangeWithBasic, RecordingHttp, register, type RegisteredClient } from '../helpers/oauth-flow.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { mintToken } from '../helpers/tokens.js';

/**
 * Issue 17: every path that revokes tokens writes exactly one `token.revoked` per access token
 * that stopped working, with the same detail shape ({by, reason?}), because all of them go through
 * oauth/revoke.ts.
 */
describe('one token.revoked per revoked token, on every path', () => {
  let server: TestServer;
  let http: RecordingHttp;
  let client: RegisteredClient;
  const redirect = 'https://chatgpt.com/connector_platform_oauth_redirect';
  const clock = createFixedClock(Date.now());

  beforeAll(async () => {
    server = await startTestServer({ clock, config: { auth: { refreshTokens: true } } });
    http = new RecordingHttp(server.url);
    client = await register(http, { client_name: 'Revoker', redirect_uris: [redirect], grant_types: ['authorization_code', 'refresh_token'] });
  });
  afterAll(async () => {
    await server?.close();
  });

  const revokedEvents = async (tokenIds: string[]): Promise<AuthEvent[]> => {
    await server.events.flush();
    return (await server.events.readLast(100_000)).filter((e) => e.type === 'token.revoked' && tokenIds.includes(e.token_id ?? ''));
  };
  const grant = async () => {
    const { code, verifier } = await authorize(http, { client_id: client.client_id, redirect_uri: redirect });
    const response = await exchangeWithBasic(http, client, { code, verifier, redirect_uri: redirect });
    expect(response.status, response.text).toBe(200);
    const tokens = response.json<{ access_token: string; refresh_token: string }>();
    const record = (await server.store.listAccessTokens()).at(-1)!;
    return { code, verifier, ...tokens, tokenId: record.id };
  };

  it('RFC 6749 §4.1.2: a replayed code', async () => {
    const first = await grant();
    expect((await exchangeWithBasic(http, client, { code: first.code, verifier: first.verifier, redirect_uri: redirect })).status).toBe(400);
    const events = await revokedEvents([first.tokenId]);
    expect(events).toHaveLength(1);
    expect(events[0]!.detail).toEqual({ by: 'serve', reason: 'authorization code replayed' });
  });

  it('OAuth 2.1 §4.3.1: a refresh token reused after its grace window revokes every token of the family, each once', async () => {
    const first = await grant();
    const basicAuth = { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` };
    const rotated = await http.postForm('/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token }, basicAuth);
    expect(rotated.status).toBe(200);
    const second = (await server.store.listAccessTokens()).at(-1)!.id;
    // Past the 60 s grace window, the old refresh token is a reuse.
    clock.advance(61_000);
    expect((await http.postForm('/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token }, basicAuth)).status).toBe(400);
    const events = await revokedEvents([first.tokenId, second]);
    expect(events.map((e) => e.token_id).sort()).toEqual([first.tokenId, second].sort());
    expect(events.every((e) => JSON.stringify(e.detail) === JSON.stringify({ by: 'serve', reason: 'refresh token reuse' }))).toBe(true);
  });

  it('RFC 7009: /revoke of an access token, and of a refresh token (its grant goes along)', async () => {
    const basicAuth = { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` };
    const a = await grant();
    expect((await http.postForm('/revoke', { token: a.access_token }, basicAuth)).status).toBe(200);
    expect((await revokedEvents([a.tokenId])).map((e) => e.detail)).toEqual([{ by: 'client' }]);
    const b = await grant();
    expect((await http.postForm('/revoke', { token: b.refresh_token }, basicAuth)).status).toBe(200);
    expect((await revokedEvents([b.tokenId])).map((e) => e.detail)).toEqual([{ by: 'client', reason: 'refresh token revoked' }]);
  });

  it('the owner: revoking by client, removing a client, pruning an abandoned one', async () => {
    const deps = { store: server.store, events: server.events, clock };
    const one = await mintToken(server.store, { baseUrl: server.url });
    const two = await mintToken(server.store, { baseUrl: server.url, clientId: one.record.clientId });
    await revokeTokens(deps, { clientId: one.record.clientId }, { by: 'cli' });
    expect((await revokedEvents([one.record.id, two.record.id])).map((e) => e.detail)).toEqual([{ by: 'cli' }, { by: 'cli' }]);

    const three = await mintToken(server.store, { baseUrl: server.url });
    await removeClient(deps, three.record.clientId, 'cli');
    expect((await revokedEvents([three.record.id])).map((e) => e.detail)).toEqual([{ by: 'cli', reason: 'client removed' }]);

    // A pruned client's tokens ended long ago: none is still active, so none is revoked, and no event claims one.
    const old = await mintToken(server.store, { baseUrl: server.url, expiresAt: clock.now() - 40 * 86_400_000 });
    await pruneAbandonedClients(deps, { olderThanMs: 30 * 86_400_000, by: 'serve' });
    expect(await revokedEvents([old.record.id])).toEqual([]);
  });
});
