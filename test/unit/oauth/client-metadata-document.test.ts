import { describe, expect, it } from 'vitest';
import {
  ClientMetadataDocuments,
  clientIdUrlProblem,
  documentLifetime,
  isUrlClientId,
  MetadataDocumentError,
  metadataDocumentHost,
  parseClientMetadataDocument,
  type ClientMetadataFetcher,
  type FetchedDocument,
} from '../../../src/oauth/client-metadata-document.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import { testSettings } from './settings.js';

const URL_ID = 'https://client.example/oauth/metadata.json';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function doc(overrides: Record<string, unknown> = {}, response: Partial<FetchedDocument> = {}): FetchedDocument {
  return {
    status: 200,
    contentType: 'application/json; charset=utf-8',
    cacheControl: undefined,
    age: undefined,
    body: JSON.stringify({
      client_id: URL_ID,
      client_name: 'Example',
      redirect_uris: ['https://client.example/callback', 'http://127.0.0.1/cb'],
      ...overrides,
    }),
    ...response,
  };
}

function parse(fetched: FetchedDocument, settings = testSettings()) {
  return parseClientMetadataDocument(URL_ID, fetched, settings, 1_000);
}

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(MetadataDocumentError);
    return (error as Error).message;
  }
  throw new Error('expected a MetadataDocumentError');
}

describe('CIMD §3: the client identifier URL', () => {
  it.each([
    ['https://client.example/oauth/metadata.json'],
    ['https://claude.ai/oauth/mcp-oauth-client-metadata'],
    ['https://client.example:8443/client?tenant=a'],
  ])('accepts %s', (id) => {
    expect(clientIdUrlProblem(id)).toBeUndefined();
  });

  it.each([
    ['http://client.example/metadata.json', /https/],
    ['HTTP://client.example/metadata.json', /https/],
    ['https://client.example', /path/],
    ['https://client.example/', /path/],
    ['https://client.example/a/../metadata.json', /"\." or "\.\."/],
    ['https://client.example/./metadata.json', /"\." or "\.\."/],
    ['https://client.example/%2e%2e/metadata.json', /"\." or "\.\."/],
    ['https://client.example/metadata.json#frag', /fragment/],
    ['https://user:pass@client.example/metadata.json', /user name/],
    ['https://client.example/meta data.json', /spaces/],
    [`https://client.example/${'a'.repeat(2_000)}`, /longer/],
  ])('refuses %s', (id, why) => {
    expect(clientIdUrlProblem(id)).toMatch(why);
  });

  it('tells URL client ids from the UUIDs this server issues', () => {
    expect(isUrlClientId(URL_ID)).toBe(true);
    expect(isUrlClientId('http://client.example/x')).toBe(true);
    expect(isUrlClientId('0d9e8f7a-1111-4222-8333-444455556666')).toBe(false);
    expect(metadataDocumentHost('https://claude.ai:443/oauth/x')).toBe('claude.ai');
    expect(metadataDocumentHost('0d9e8f7a-1111-4222-8333-444455556666')).toBeUndefined();
  });
});

describe('CIMD §4, §4.1: the document', () => {
  it('describes a public client (none) with the listed redirect URIs', () => {
    const client = parse(doc({ client_uri: 'https://client.example', scope: 'mcp unknown' }));
    expect(client).toEqual({
      clientId: URL_ID,
      clientSecretHash: null,
      clientName: 'Example',
      redirectUris: ['https://client.example/callback', 'http://127.0.0.1/cb'],
      tokenEndpointAuthMethod: 'none',
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      scope: 'mcp',
      extraMetadata: { client_uri: 'https://client.example' },
      createdAt: 1_000,
      lastUsedAt: null,
    });
  });

  it('keeps the refresh_token grant only when refresh tokens are on', () => {
    const grants = { grant_types: ['authorization_code', 'refresh_token'] };
    expect(parse(doc(grants)).grantTypes).toEqual(['authorization_code']);
    expect(parse(doc(grants), testSettings({ refreshTokens: true })).grantTypes).toEqual(['authorization_code', 'refresh_token']);
  });

  it('§4.1: client_id must equal the URL exactly, with no normalisation', () => {
    expect(reason(() => parse(doc({ client_id: 'https://client.example/oauth/metadata.json/' })))).toMatch(/differs from the URL/);
    expect(reason(() => parse(doc({ client_id: 'https://CLIENT.example/oauth/metadata.json' })))).toMatch(/differs from the URL/);
    expect(reason(() => parse(doc({ client_id: undefined })))).toMatch(/has no client_id/);
  });

  const RSA_KEY = { kty: 'RSA', kid: 'k1', use: 'sig', alg: 'RS256', n: 'y09nMyYX6LhSgS3YmbLOZrFoR8SffxG0kM5gQ5PKpHVM', e: 'AQAB' };

  it.each([
    ['the singular member only', { token_endpoint_auth_method: 'private_key_jwt' }, false],
    ['the plural member only (ChatGPT, August 2026)', { token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'] }, true],
    [
      'both members (ChatGPT, late August 2026)',
      { token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'] },
      true,
    ],
  ])('RFC 7523 §2.2: a document asking for private_key_jwt with a jwks_uri is a key-authenticated client (%s)', (_name, methods, acceptsNone) => {
    const client = parse(doc({ ...methods, token_endpoint_auth_signing_alg: 'RS256', jwks_uri: 'https://client.example/jwks.json' }));
    expect(client).toMatchObject({
      tokenEndpointAuthMethod: 'private_key_jwt',
      jwksUri: 'https://client.example/jwks.json',
      tokenEndpointAuthSigningAlg: 'RS256',
      clientSecretHash: null,
    });
    expect(client.acceptsNone === true).toBe(acceptsNone);
  });

  it("inline jwks are kept as the client's keys", () => {
    expect(parse(doc({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [RSA_KEY] } })).jwks).toEqual({ keys: [RSA_KEY] });
  });

  it.each([
    ['no keys at all', { token_endpoint_auth_method: 'private_key_jwt' }, /send jwks or jwks_uri/],
    [
      'both jwks and jwks_uri (RFC 7591 §2)',
      { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [RSA_KEY] }, jwks_uri: 'https://client.example/jwks' },
      /must not both be present/,
    ],
    [
      'a private key in jwks',
      { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...RSA_KEY, d: 'secret' }] } },
      /private or symmetric key material/,
    ],
    [
      'a symmetric key in jwks',
      { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } },
      /not an RSA, EC or OKP public key/,
    ],
    ['an http jwks_uri', { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'http://client.example/jwks' }, /jwks_uri must be an https URL/],
    [
      'an HMAC signing algorithm',
      { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://client.example/jwks', token_endpoint_auth_signing_alg: 'HS256' },
      /token_endpoint_auth_signing_alg must be one of RS256/,
    ],
    [
      'only methods this server does not know',
      { token_endpoint_auth_methods_supported: ['tls_client_auth'] },
      /no client authentication method this server supports/,
    ],
    [
      'an unsupported declared method',
      { token_endpoint_auth_method: 'tls_client_auth', token_endpoint_auth_methods_supported: ['none'] },
      /tls_client_auth.*does not support/,
    ],
  ])('a private_key_jwt document with %s is refused', (_name, overrides, message) => {
    expect(reason(() => parse(doc(overrides)))).toMatch(message);
  });

  it('a document offering private_key_jwt and none but publishing no keys is a public client', () => {
    const client = parse(doc({ token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'] }));
    expect(client.tokenEndpointAuthMethod).toBe('none');
    expect(client.jwksUri).toBeUndefined();
  });

  it.each([
    ['web', ['cursor://anysphere.cursor-retrieval/oauth/callback'], /private-use scheme.*native/],
    ['desktop', ['https://client.example/callback'], /application_type must be "web" or "native"/],
  ])('OpenID Connect Registration §2: application_type %s with %j is refused', (applicationType, redirectUris, message) => {
    expect(reason(() => parse(doc({ application_type: applicationType, redirect_uris: redirectUris })))).toMatch(message);
  });

  it('application_type native may use a private-use scheme, loopback http and https', () => {
    const uris = ['cursor://anysphere.cursor-retrieval/oauth/callback', 'http://127.0.0.1/callback', 'https://client.example/callback'];
    expect(parse(doc({ application_type: 'native', redirect_uris: uris })).applicationType).toBe('native');
  });

  it.each(['client_secret_basic', 'client_secret_post', 'client_secret_jwt'])('§4.1: the shared-secret method %s is refused', (method) => {
    expect(reason(() => parse(doc({ token_endpoint_auth_method: method })))).toMatch(new RegExp(`${method}.*shared-secret`));
    expect(reason(() => parse(doc({ token_endpoint_auth_methods_supported: ['none', method] })))).toMatch(new RegExp(`${method}.*shared-secret`));
  });

  it('§4.1: a document carrying a client_secret is refused', () => {
    expect(reason(() => parse(doc({ client_secret: 'abc' })))).toMatch(/client_secret/);
  });

  it.each([
    [{ redirect_uris: [] }, /no redirect_uris/],
    [{ redirect_uris: ['javascript:alert(1)'] }, /redirect/],
    [{ redirect_uris: ['http://evil.example/cb'] }, /must use https/],
    [{ redirect_uris: 'https://client.example/cb' }, /redirect_uris/],
    [{ response_types: ['token'] }, /response types/],
    [{ grant_types: ['client_credentials'] }, /authorization_code/],
  ])('refuses %j', (overrides, why) => {
    expect(reason(() => parse(doc(overrides)))).toMatch(why);
  });

  it.each([
    [{ status: 302 }, /redirect \(HTTP 302\); redirects are not followed/],
    [{ status: 404 }, /HTTP 404/],
    [{ contentType: 'text/html' }, /application\/json/],
    [{ contentType: undefined }, /application\/json/],
    [{ body: '{"client_id": ' }, /not valid JSON/],
    [{ body: '[1,2]' }, /not a JSON object/],
  ])('§4: refuses the answer %j', (response, why) => {
    expect(reason(() => parse(doc({}, response)))).toMatch(why);
  });

  it('§4: accepts application/<type>+json', () => {
    expect(parse(doc({}, { contentType: 'application/oauth-client+json' })).clientId).toBe(URL_ID);
  });
});

describe('CIMD §4.4: caching', () => {
  const bounds = { minTtlMs: 5 * MINUTE, maxTtlMs: 24 * HOUR };
  it.each([
    [undefined, undefined, 5 * MINUTE],
    ['max-age=3600', undefined, HOUR],
    ['public, max-age=3600', 600, 50 * MINUTE],
    ['max-age=10', undefined, 5 * MINUTE],
    ['max-age=31536000', undefined, 24 * HOUR],
    ['no-store', undefined, 5 * MINUTE],
    ['no-cache, max-age=3600', undefined, 5 * MINUTE],
  ])('Cache-Control %j with Age %j is fresh for %d ms', (cacheControl, age, expected) => {
    expect(documentLifetime({ cacheControl, age }, bounds)).toBe(expected);
  });

  function setup(answer: (url: string) => FetchedDocument | Promise<FetchedDocument>, boundsOverride = {}) {
    const clock = createFixedClock();
    const fetched: string[] = [];
    const fetcher: ClientMetadataFetcher = {
      async fetch(url) {
        fetched.push(url);
        return answer(url);
      },
    };
    const documents = new ClientMetadataDocuments(fetcher, { clock, settings: testSettings() }, boundsOverride);
    return { clock, fetched, documents };
  }

  it('fetches a document once within its lifetime, and again after', async () => {
    const { clock, fetched, documents } = setup(() => doc({}, { cacheControl: 'max-age=600' }));
    await documents.resolve(URL_ID);
    clock.advance(9 * MINUTE);
    await documents.resolve(URL_ID);
    expect(fetched).toHaveLength(1);
    clock.advance(MINUTE);
    await documents.resolve(URL_ID);
    expect(fetched).toHaveLength(2);
  });

  it('remembers a failure for the failure lifetime, then asks again', async () => {
    const { clock, fetched, documents } = setup(() => doc({ client_id: 'https://other.example/x' }), { failureTtlMs: MINUTE });
    await expect(documents.resolve(URL_ID)).rejects.toThrow(/differs/);
    await expect(documents.resolve(URL_ID)).rejects.toThrow(/differs/);
    expect(fetched).toHaveLength(1);
    clock.advance(MINUTE);
    await expect(documents.resolve(URL_ID)).rejects.toThrow(/differs/);
    expect(fetched).toHaveLength(2);
  });

  it('a fetcher failure is cached too, and an unexpected one is reported without its details', async () => {
    const { fetched, documents } = setup(() => {
      throw new Error('ECONNREFUSED 10.0.0.1:443');
    });
    await expect(documents.resolve(URL_ID)).rejects.toThrow(/^the client metadata document could not be fetched$/);
    await expect(documents.resolve(URL_ID)).rejects.toBeInstanceOf(MetadataDocumentError);
    expect(fetched).toHaveLength(1);
  });

  it('never fetches an invalid client_id URL', async () => {
    const { fetched, documents } = setup(() => doc());
    await expect(documents.resolve('http://client.example/metadata.json')).rejects.toThrow(/must be an https URL/);
    expect(fetched).toEqual([]);
  });

  it('concurrent requests for one URL share one fetch', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { fetched, documents } = setup(async () => {
      await gate;
      return doc();
    });
    const all = Promise.all([documents.resolve(URL_ID), documents.resolve(URL_ID), documents.resolve(URL_ID)]);
    release();
    expect((await all).map((c) => c.clientId)).toEqual([URL_ID, URL_ID, URL_ID]);
    expect(fetched).toHaveLength(1);
  });

  it('keeps at most maxEntries documents, dropping the least recently used', async () => {
    const ids = ['a', 'b', 'c'].map((n) => `https://client.example/${n}.json`);
    const { fetched, documents } = setup((url) => ({ ...doc(), body: JSON.stringify({ client_id: url, redirect_uris: ['https://client.example/cb'] }) }), {
      maxEntries: 2,
    });
    await documents.resolve(ids[0]!);
    await documents.resolve(ids[1]!);
    await documents.resolve(ids[0]!); // a is now the most recent
    await documents.resolve(ids[2]!); // evicts b
    expect(fetched).toEqual([ids[0], ids[1], ids[2]]);
    await documents.resolve(ids[0]!);
    await documents.resolve(ids[1]!);
    expect(fetched).toEqual([ids[0], ids[1], ids[2], ids[1]]);
  });

  it('refuses rather than queues beyond maxInFlight fetches', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { documents } = setup(
      async (url) => {
        await gate;
        return { ...doc(), body: JSON.stringify({ client_id: url, redirect_uris: ['https://client.example/cb'] }) };
      },
      { maxInFlight: 1 },
    );
    const first = documents.resolve('https://client.example/1.json');
    await expect(documents.resolve('https://client.example/2.json')).rejects.toThrow(/try again/);
    release();
    await expect(first).resolves.toMatchObject({ clientId: 'https://client.example/1.json' });
    await expect(documents.resolve('https://client.example/2.json')).resolves.toMatchObject({ clientId: 'https://client.example/2.json' });
  });

  it('hands out copies: a caller changing one does not change the cache', async () => {
    const { documents } = setup(() => doc());
    (await documents.resolve(URL_ID)).redirectUris.push('https://evil.example/cb');
    expect((await documents.resolve(URL_ID)).redirectUris).not.toContain('https://evil.example/cb');
  });
});
