import { describe, expect, it } from 'vitest';
import { InvalidRequestError, InvalidScopeError } from '../../../src/oauth/errors.js';
import { checkPersonalTokenRequest, ensureFirstPartyClient, issuePersonalAccessToken } from '../../../src/oauth/first-party.js';
import { s256 } from '../../../src/oauth/pkce.js';
import { hashSecret } from '../../../src/oauth/secrets.js';
import { signInAuthorizationUrl, SignInTests } from '../../../src/oauth/sign-in-test.js';
import { verifyAccessToken, type OAuthDeps } from '../../../src/oauth/tokens.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import type { AuthEvent, EventLog, NewEvent } from '../../../src/store/event-log.js';
import { createMemoryStore } from '../../../src/store/memory-store.js';
import { BASE, testSettings } from './settings.js';

const DAY = 86_400_000;

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

function deps(overrides: { baseUrl?: string; scopes?: string[] } = {}) {
  const events = memoryEvents();
  const clock = createFixedClock();
  const d: OAuthDeps & { events: typeof events; clock: typeof clock } = { store: createMemoryStore(), events, clock, settings: testSettings(overrides) };
  return d;
}

describe('first-party client', () => {
  it('is public, PKCE-only, redirects to <base>/oauth/callback; created once, moved when the base URL changes, each logged', async () => {
    const d = deps();
    const client = await ensureFirstPartyClient(d, {}, 'test');
    expect(client).toMatchObject({
      firstParty: true,
      clientSecretHash: null,
      tokenEndpointAuthMethod: 'none',
      grantTypes: ['authorization_code'],
      redirectUris: [`${BASE}/oauth/callback`],
    });
    expect((await ensureFirstPartyClient(d, {}, 'test')).clientId).toBe(client.clientId);
    const moved = await ensureFirstPartyClient({ ...d, settings: testSettings({ baseUrl: 'https://new.example.com/prefix' }) }, {}, 'test');
    expect(moved).toMatchObject({ clientId: client.clientId, redirectUris: ['https://new.example.com/prefix/oauth/callback'] });
    expect(d.events.all.map((e) => e.type)).toEqual(['client.registered', 'client.updated']);
  });
});

describe('personal access tokens', () => {
  it.each([
    [{ ttlMs: 0 }, InvalidRequestError],
    [{ ttlMs: 367 * DAY }, InvalidRequestError],
    [{ ttlMs: DAY, label: '   ' }, InvalidRequestError],
    [{ ttlMs: DAY, label: 'x'.repeat(101) }, InvalidRequestError],
    [{ ttlMs: DAY, label: 'line\nbreak' }, InvalidRequestError],
    [{ ttlMs: DAY, scope: 'offline_access' }, InvalidScopeError],
    [{ ttlMs: DAY, scope: 'mcp admin' }, InvalidScopeError],
    [{ ttlMs: DAY, scope: ' ' }, InvalidScopeError],
  ])('refuses %o', (request, error) => {
    expect(() => checkPersonalTokenRequest(request, testSettings())).toThrow(error);
  });

  it('takes a trimmed label, the configured scopes by default, a subset when asked', () => {
    const settings = testSettings({ scopes: ['mcp', 'read'] });
    expect(checkPersonalTokenRequest({ ttlMs: DAY, label: '  backup  ' }, settings)).toEqual({ label: 'backup', ttlMs: DAY, scopes: ['mcp', 'read'] });
    expect(checkPersonalTokenRequest({ ttlMs: 366 * DAY, scope: 'read read' }, settings)).toEqual({ label: undefined, ttlMs: 366 * DAY, scopes: ['read'] });
  });

  it('RFC 8707: is issued for the origin resource, stored as a hash with its label, verified like any token, and only for the first-party client', async () => {
    const d = deps();
    const client = await ensureFirstPartyClient(d, {}, 'test');
    const { token, record } = await issuePersonalAccessToken(client, { label: 'ci', ttlMs: 7 * DAY }, d, {});
    expect(token).toMatch(/^mcp_[0-9a-f]{32}$/);
    expect(record).toMatchObject({
      tokenHash: hashSecret(token),
      clientId: client.clientId,
      resource: BASE,
      scopes: ['mcp'],
      label: 'ci',
      expiresAt: d.clock.now() + 7 * DAY,
      revokedAt: null,
    });
    expect(JSON.stringify(await d.store.listAccessTokens())).not.toContain(token);
    await expect(verifyAccessToken(token, d)).resolves.toMatchObject({ tokenId: record.id, resource: BASE });
    d.clock.advance(7 * DAY);
    await expect(verifyAccessToken(token, d)).rejects.toMatchObject({ reason: 'expired' });
    expect(d.events.all.at(-1)).toMatchObject({ type: 'token.issued', token_id: record.id, detail: { grant: 'personal_access_token', label: 'ci' } });
    expect(JSON.stringify(d.events.all)).not.toContain(token);

    const { firstParty: _mark, ...ordinary } = client;
    await expect(issuePersonalAccessToken(ordinary, { ttlMs: DAY }, d, {})).rejects.toBeInstanceOf(InvalidRequestError);
  });
});

describe('SignInTests: the server-side half of the test sign-in', () => {
  const client = { clientId: 'c1', redirectUri: `${BASE}/oauth/callback` };

  it('builds an S256 authorization request whose verifier never leaves the server', () => {
    const tests = new SignInTests(createFixedClock());
    const test = tests.start('binding-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', client);
    const url = new URL(signInAuthorizationUrl(test, testSettings()));
    expect(url.origin + url.pathname).toBe(`${BASE}/authorize`);
    expect(url.searchParams.get('code_challenge')).toBe(s256(test.codeVerifier));
    expect(url.searchParams.get('state')).toBe(test.state);
    expect(url.href).not.toContain(test.codeVerifier);
    expect(test.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('is single use, bound to the browser, and expires after 10 minutes', () => {
    const clock = createFixedClock();
    const tests = new SignInTests(clock);
    const a = tests.start('browser-a', client);
    expect(tests.take(a.state, 'browser-b')).toEqual({ outcome: 'wrong browser' });
    expect(tests.take(a.state, undefined)).toEqual({ outcome: 'wrong browser' });
    expect(tests.take(`${a.state}x`, 'browser-a')).toEqual({ outcome: 'unknown' });
    expect(tests.take(a.state, 'browser-a')).toEqual({ outcome: 'ok', test: a });
    expect(tests.take(a.state, 'browser-a')).toEqual({ outcome: 'unknown' });

    const b = tests.start('browser-a', client);
    clock.advance(SignInTests.TTL_MS);
    expect(tests.take(b.state, 'browser-a')).toEqual({ outcome: 'expired' });
    expect(tests.take(b.state, 'browser-a')).toEqual({ outcome: 'unknown' });
  });

  it('keeps at most MAX pending sign-ins, dropping the oldest', () => {
    const tests = new SignInTests(createFixedClock());
    const first = tests.start('b', client);
    for (let i = 0; i < SignInTests.MAX; i++) tests.start('b', client);
    expect(tests.take(first.state, 'b')).toEqual({ outcome: 'unknown' });
  });

  it('form tokens are bound to the purpose, the browser and the subject', () => {
    const tests = new SignInTests(createFixedClock());
    const token = tests.formToken('sign-out', 'browser-a', 'tok_1');
    expect(tests.checkFormToken(token, 'sign-out', 'browser-a', 'tok_1')).toBe(true);
    expect(tests.checkFormToken(token, 'sign-out', 'browser-b', 'tok_1')).toBe(false);
    expect(tests.checkFormToken(token, 'sign-out', 'browser-a', 'tok_2')).toBe(false);
    expect(tests.checkFormToken(token, 'other', 'browser-a', 'tok_1')).toBe(false);
    expect(tests.checkFormToken(token, 'sign-out', undefined, 'tok_1')).toBe(false);
    expect(new SignInTests(createFixedClock()).checkFormToken(token, 'sign-out', 'browser-a', 'tok_1')).toBe(false);
  });
});
