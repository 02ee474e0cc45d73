import { describe, expect, it } from 'vitest';
import { verifyClientAssertion } from '../../../src/oauth/client-assertion.js';
import { ClientKeySets } from '../../../src/oauth/client-keys.js';
import type { ClientMetadataFetcher, FetchedDocument } from '../../../src/oauth/client-metadata-document.js';
import { InvalidClientError } from '../../../src/oauth/errors.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import { createMemoryStore } from '../../../src/store/memory-store.js';
import type { ClientRecord } from '../../../src/store/types.js';
import { createSigningKey, jwksOf, signAssertion, type SigningKey } from '../../helpers/client-assertions.js';
import { testSettings } from './settings.js';

const CLIENT_ID = 'https://client.example/oauth/client.json';
const JWKS_URI = 'https://client.example/oauth/jwks.json';
const settings = testSettings();
const TOKEN_ENDPOINT = `${settings.issuer}/token`;

/** A jwks_uri whose content (or HTTP status) the test changes, counting fetches (the network is not under test here). */
function jwksServer(initial: SigningKey[]) {
  let keys = initial;
  let status = 200;
  let fetches = 0;
  const fetcher: ClientMetadataFetcher = {
    async fetch(url): Promise<FetchedDocument> {
      expect(url).toBe(JWKS_URI);
      fetches++;
      return {
        status,
        contentType: 'application/jwk-set+json',
        cacheControl: 'max-age=3600',
        age: undefined,
        body: status === 200 ? JSON.stringify(jwksOf(...keys)) : '',
      };
    },
  };
  return {
    fetcher,
    publish: (...next: SigningKey[]) => {
      keys = next;
    },
    answer: (next: number) => {
      status = next;
    },
    fetches: () => fetches,
  };
}

function client(overrides: Partial<ClientRecord> = {}): ClientRecord {
  return {
    clientId: CLIENT_ID,
    clientSecretHash: null,
    clientName: 'Agent',
    redirectUris: ['https://client.example/cb'],
    tokenEndpointAuthMethod: 'private_key_jwt',
    jwksUri: JWKS_URI,
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    scope: null,
    extraMetadata: {},
    createdAt: 0,
    lastUsedAt: null,
    ...overrides,
  };
}

async function setup(keys: SigningKey[]) {
  const clock = createFixedClock(Date.now());
  const server = jwksServer(keys);
  const deps = { store: createMemoryStore(), clock, settings, keys: new ClientKeySets(server.fetcher, clock) };
  const sign = (key: SigningKey, options: Partial<Parameters<typeof signAssertion>[1]> = {}) =>
    signAssertion(key, { clientId: CLIENT_ID, audience: TOKEN_ENDPOINT, issuedAt: Math.floor(clock.now() / 1000), ...options });
  const verify = (assertion: string, record = client()) => verifyClientAssertion(assertion, record, TOKEN_ENDPOINT, deps);
  return { clock, server, deps, sign, verify };
}

async function reason(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidClientError);
  return (error as Error).message;
}

describe('RFC 7523 client assertions', () => {
  it.each(['RS256', 'PS256', 'ES256', 'EdDSA'])('RFC 7518 §3.1 / RFC 8037: an assertion signed with %s verifies', async (alg) => {
    const key = await createSigningKey(alg);
    const { sign, verify } = await setup([key]);
    await expect(verify(await sign(key))).resolves.toBeUndefined();
  });

  it('keys rotate: an unknown kid fetches the jwks_uri again once its copy is old enough, not before', async () => {
    const first = await createSigningKey('ES256');
    const rotated = await createSigningKey('ES256');
    const { clock, server, sign, verify } = await setup([first]);
    await verify(await sign(first));
    expect(server.fetches()).toBe(1);
    server.publish(first, rotated);
    // Within the refetch interval an unknown kid cannot make the server fetch again.
    expect(await reason(verify(await sign(rotated)))).toMatch(/no key in the client's jwks_uri matches/);
    expect(server.fetches()).toBe(1);
    clock.advance(31_000);
    await verify(await sign(rotated));
    expect(server.fetches()).toBe(2);
    // A known kid is served from the cached copy.
    await verify(await sign(first));
    expect(server.fetches()).toBe(2);
  });

  it('a failed refetch (forced by an unknown kid) keeps the keys that were good: an attacker cannot lock the client out', async () => {
    const key = await createSigningKey('RS256');
    const { clock, server, sign, verify } = await setup([key]);
    await verify(await sign(key));
    server.answer(403);
    clock.advance(31_000);
    // A forged header with an unknown kid forces a refetch, which fails…
    expect(await reason(verify(await sign(key, { header: { kid: 'forged' } })))).toMatch(/no key in the client's jwks_uri matches/);
    expect(server.fetches()).toBe(2);
    // …and the real client's assertions still verify with the keys fetched before.
    await verify(await sign(key));
    clock.advance(3_600_000);
    await verify(await sign(key));
  });

  it('RFC 7517 §4.5: without a kid, each key of the right type is tried', async () => {
    const [a, b] = [await createSigningKey('ES256'), await createSigningKey('ES256')];
    const { sign, verify } = await setup([a, b]);
    await expect(verify(await sign(b, { header: { kid: undefined } }))).resolves.toBeUndefined();
    const stranger = await createSigningKey('ES256');
    expect(await reason(verify(await sign(stranger, { header: { kid: undefined } })))).toMatch(/signature does not verify/);
  });

  it('OpenID Connect Registration §2: a registered token_endpoint_auth_signing_alg is the only one accepted', async () => {
    const key = await createSigningKey('PS256');
    const { sign, verify } = await setup([key]);
    expect(await reason(verify(await sign(key), client({ tokenEndpointAuthSigningAlg: 'RS256' })))).toMatch(
      /signed with PS256, but the client registered token_endpoint_auth_signing_alg RS256/,
    );
  });

  it('an assertion issued in the future, or not yet valid, is refused', async () => {
    const key = await createSigningKey('RS256');
    const { clock, sign, verify } = await setup([key]);
    const now = Math.floor(clock.now() / 1000);
    expect(await reason(verify(await sign(key, { issuedAt: now + 600 })))).toMatch(/issued in the future/);
    expect(await reason(verify(await sign(key, { claims: { nbf: now + 600 } })))).toMatch(/not valid yet/);
  });

  it('a small clock skew is tolerated; an assertion expired beyond it is not', async () => {
    const key = await createSigningKey('RS256');
    const { clock, sign, verify } = await setup([key]);
    const now = Math.floor(clock.now() / 1000);
    await expect(verify(await sign(key, { issuedAt: now - 320, lifetimeSeconds: 300 }))).resolves.toBeUndefined();
    expect(await reason(verify(await sign(key, { issuedAt: now - 400, lifetimeSeconds: 300 })))).toMatch(/expired/);
  });

  it('inline jwks verify without any fetch', async () => {
    const key = await createSigningKey('ES256');
    const { server, sign, verify } = await setup([]);
    await verify(await sign(key), client({ jwksUri: undefined, jwks: jwksOf(key) as ClientRecord['jwks'] }));
    expect(server.fetches()).toBe(0);
  });
});
