import { describe, expect, it } from 'vitest';
import {
  AuthorizationPageError,
  AuthorizationRedirectError,
  issueAuthorizationCode,
  LoginThrottle,
  PendingAuthorizations,
  validateAuthorizationRequest,
} from '../../../src/oauth/authorization.js';
import { registerClient } from '../../../src/oauth/registration.js';
import { hashSecret } from '../../../src/oauth/secrets.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import { createMemoryStore } from '../../../src/store/memory-store.js';
import { BASE, testSettings } from './settings.js';

const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect';

async function setup() {
  const store = createMemoryStore();
  const clock = createFixedClock();
  const settings = testSettings();
  const deps = { store, clock, settings };
  const client = (await registerClient({ client_name: 'ChatGPT', redirect_uris: [REDIRECT] }, deps)).response;
  const valid = {
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT,
    state: 'oauth_s_1',
    code_challenge: CHALLENGE,
    code_challenge_method: 'S256',
  };
  return { store, clock, settings, deps, client, valid };
}

describe('authorization request validation (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1)', () => {
  it('a valid request yields the client, redirect, default scope and the origin as resource', async () => {
    const { deps, valid, client } = await setup();
    const request = await validateAuthorizationRequest(valid, deps);
    expect(request).toMatchObject({
      redirectUri: REDIRECT,
      redirectUriProvided: true,
      state: 'oauth_s_1',
      scopes: ['mcp'],
      resource: BASE,
      codeChallenge: CHALLENGE,
    });
    expect(request.client.clientId).toBe(client.client_id);
  });

  it.each<[string, Record<string, string | string[] | undefined>]>([
    ['no client_id', { client_id: undefined }],
    ['an unknown client_id', { client_id: '00000000-0000-4000-8000-000000000000' }],
    ['client_id twice', { client_id: ['a', 'b'] }],
    ['an unregistered redirect_uri', { redirect_uri: 'https://evil.example/cb' }],
    ['redirect_uri twice', { redirect_uri: [REDIRECT, REDIRECT] }],
  ])('RFC 6749 §4.1.2.1: %s is an error for the person, never a redirect', async (_what, overrides) => {
    const { deps, valid } = await setup();
    await expect(validateAuthorizationRequest({ ...valid, ...overrides }, deps)).rejects.toBeInstanceOf(AuthorizationPageError);
  });

  it.each<[string, Record<string, string | string[] | undefined>, string]>([
    ['plain PKCE', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['no PKCE', { code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request'],
    ['no method', { code_challenge_method: undefined }, 'invalid_request'],
    ['response_type=token', { response_type: 'token' }, 'unsupported_response_type'],
    ['an unknown scope', { scope: 'admin' }, 'invalid_scope'],
    ["another server's resource", { resource: 'https://evil.example/mcp' }, 'invalid_target'],
    ['state twice', { state: ['a', 'b'] }, 'invalid_request'],
  ])('RFC 6749 §4.1.2.1 + RFC 9207: %s redirects with %s, state and iss', async (_what, overrides, code) => {
    const { deps, valid } = await setup();
    const error = await validateAuthorizationRequest({ ...valid, ...overrides }, deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthorizationRedirectError);
    const url = new URL((error as AuthorizationRedirectError).redirectTo);
    expect(`${url.origin}${url.pathname}`).toBe(REDIRECT);
    expect(url.searchParams.get('error')).toBe(code);
    expect(url.searchParams.get('iss')).toBe(BASE);
    if (!Array.isArray(overrides.state)) expect(url.searchParams.get('state')).toBe('oauth_s_1');
  });

  it(
    'RFC 6749 §4.1.2: the issued code is stored only as its hash, bound to client, ' +
      'redirect, challenge, scope and resource, and redirected with state and iss',
    async () => {
      const { deps, valid, store, clock, client } = await setup();
      const request = await validateAuthorizationRequest({ ...valid, resource: `${BASE}/mcp` }, deps);
      const { code, redirectTo } = await issueAuthorizationCode(request, deps);
      const url = new URL(redirectTo);
      expect(url.searchParams.get('code')).toBe(code);
      expect(url.searchParams.get('state')).toBe('oauth_s_1');
      expect(url.searchParams.get('iss')).toBe(BASE);
      const consumed = await store.consumeCode(hashSecret(code), clock.now());
      expect(consumed).toMatchObject({
        outcome: 'consumed',
        code: {
          clientId: client.client_id,
          redirectUri: REDIRECT,
          codeChallenge: CHALLENGE,
          scopes: ['mcp'],
          resource: `${BASE}/mcp`,
          expiresAt: clock.now() + 300_000,
        },
      });
      expect(JSON.stringify(consumed)).not.toContain(code);
    },
  );
});

describe('pending consent forms (DESIGN.md §4)', () => {
  it('are found only with their CSRF token and browser cookie, are single use, and expire with the code TTL', async () => {
    const { deps, valid, clock } = await setup();
    const request = await validateAuthorizationRequest(valid, deps);
    const pending = new PendingAuthorizations(clock, 300_000);
    const entry = pending.create(request, 'cookie-value-1');
    expect(pending.find(entry.id, entry.csrfToken, 'cookie-value-1')).toBe(entry);
    expect(pending.find(entry.id, entry.csrfToken, undefined)).toBeUndefined();
    expect(pending.find(entry.id, entry.csrfToken, 'cookie-value-2')).toBeUndefined();
    expect(pending.find(entry.id, 'forged', 'cookie-value-1')).toBeUndefined();
    expect(pending.consume(entry.id)).toBe(true);
    expect(pending.consume(entry.id)).toBe(false);
    expect(pending.find(entry.id, entry.csrfToken, 'cookie-value-1')).toBeUndefined();

    const later = pending.create(request, 'cookie-value-1');
    clock.advance(300_000);
    expect(pending.find(later.id, later.csrfToken, 'cookie-value-1')).toBeUndefined();
  });
});

describe('owner password throttle (DESIGN.md §4: 5 failures in 15 minutes lock an address)', () => {
  const fail = (throttle: LoginThrottle, address: string) => {
    expect(throttle.begin(address)).toBe(true);
    return throttle.end(address, { failed: true });
  };

  it('locks on the fifth failure, per address, until the failures are 15 minutes old', () => {
    const clock = createFixedClock();
    const throttle = new LoginThrottle(clock);
    for (let i = 0; i < 4; i++) {
      expect(fail(throttle, '203.0.113.7')).toBe(false);
      clock.advance(60_000);
    }
    expect(throttle.isLocked('203.0.113.7')).toBe(false);
    expect(fail(throttle, '203.0.113.7')).toBe(true);
    expect(throttle.isLocked('203.0.113.7')).toBe(true);
    expect(throttle.begin('203.0.113.7')).toBe(false);
    expect(throttle.isLocked('198.51.100.1')).toBe(false);
    // The oldest failure leaves the window 15 minutes after it happened: 11 minutes from now.
    expect(throttle.retryAfterSeconds('203.0.113.7')).toBe(11 * 60);
    clock.advance(11 * 60_000);
    expect(throttle.isLocked('203.0.113.7')).toBe(false);
  });

  it('counts checks in flight: six concurrent guesses get at most five password checks', () => {
    const throttle = new LoginThrottle(createFixedClock());
    const admitted = Array.from({ length: 6 }, () => throttle.begin('203.0.113.9'));
    expect(admitted).toEqual([true, true, true, true, true, false]);
    // A correct password among them frees its slot without counting as a failure.
    throttle.end('203.0.113.9', { failed: false });
    expect(throttle.begin('203.0.113.9')).toBe(true);
  });

  it('counts an IPv6 /64 as one address, and ::ffff:a.b.c.d as the IPv4 address', () => {
    const throttle = new LoginThrottle(createFixedClock());
    for (let i = 1; i <= 5; i++) fail(throttle, `2001:db8:1:2::${i.toString(16)}`);
    expect(throttle.isLocked('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe(true);
    expect(throttle.isLocked('2001:db8:1:3::1')).toBe(false);
    for (let i = 0; i < 5; i++) fail(throttle, '::ffff:198.51.100.20');
    expect(throttle.isLocked('198.51.100.20')).toBe(true);
  });
});
