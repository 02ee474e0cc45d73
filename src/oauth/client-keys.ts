import type { ClientRecord, PublicJwk } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import {
  DEFAULT_CACHE_BOUNDS,
  documentLifetime,
  FetchCache,
  fetchedJson,
  FetchFailedError,
  MetadataDocumentError,
  type ClientMetadataFetcher,
  type DocumentCacheBounds,
} from './fetch-cache.js';

/**
 * The public keys of `private_key_jwt` clients (RFC 7523 §2.2): published inline (`jwks`) or at an
 * https URL (`jwks_uri`, RFC 7591 §2), which is fetched like a metadata document: the same SSRF
 * guard, size and time limits, and a bounded cache.
 */

/**
 * Asymmetric JWS algorithms accepted for client assertions (RFC 7518 §3.1, RFC 8037 §3.1).
 * `none` and the HMAC family are never accepted: an HS256 "signature" made with a client's
 * public key as the secret would verify for anyone who has read that key.
 */
export const ASSERTION_SIGNING_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const MAX_KEYS = 20;
const MAX_INLINE_JWKS_BYTES = 16 * 1024;
const KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);
/** RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2: members that only a private or symmetric key has. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Why `value` is not a usable JWK Set of public signing keys (RFC 7517 §5), or undefined when it is. */
export function jwksProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JWK Set object';
  const keys = (value as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) return 'has no "keys" (RFC 7517 section 5)';
  if (keys.length > MAX_KEYS) return `has more than ${MAX_KEYS} keys`;
  for (const key of keys) {
    if (typeof key !== 'object' || key === null || Array.isArray(key)) return 'has a key that is not a JSON object';
    const jwk = key as Record<string, unknown>;
    if (typeof jwk.kty !== 'string' || !KEY_TYPES.has(jwk.kty)) return 'has a key that is not an RSA, EC or OKP public key';
    if (PRIVATE_MEMBERS.some((member) => member in jwk)) return 'contains private or symmetric key material; publish public keys only';
    if (jwk.use !== undefined && jwk.use !== 'sig') return 'has a key whose "use" is not "sig"';
    if (jwk.kid !== undefined && typeof jwk.kid !== 'string') return 'has a key whose "kid" is not a string';
  }
  return undefined;
}

/** Why `uri` cannot be a `jwks_uri`, or undefined: https, a host, no user name, no fragment. */
function jwksUriProblem(uri: unknown): string | undefined {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > 2_000) return 'must be an https URL of at most 2000 characters';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'is not a valid URL';
  }
  if (url.protocol !== 'https:' || !url.hostname) return 'must be an https URL';
  if (url.username || url.password || uri.includes('#')) return 'must not contain a user name, password or fragment';
  return undefined;
}

/** The key material of client metadata (registration or document), checked; `fail` throws. */
export function clientKeysFromMetadata(
  meta: { jwks?: unknown; jwks_uri?: unknown; token_endpoint_auth_signing_alg?: unknown },
  fail: (message: string) => never,
): Pick<ClientRecord, 'jwks' | 'jwksUri' | 'tokenEndpointAuthSigningAlg'> {
  // RFC 7591 §2: "The jwks_uri and jwks parameters MUST NOT both be present in the same request or response."
  if (meta.jwks !== undefined && meta.jwks_uri !== undefined) fail('jwks and jwks_uri must not both be present (RFC 7591 section 2)');
  if (meta.jwks === undefined && meta.jwks_uri === undefined)
    fail("private_key_jwt needs the client's public keys: send jwks or jwks_uri (RFC 7591 section 2)");
  const alg = meta.token_endpoint_auth_signing_alg;
  if (alg !== undefined && !(ASSERTION_SIGNING_ALGS as readonly unknown[]).includes(alg)) {
    fail(`token_endpoint_auth_signing_alg must be one of ${ASSERTION_SIGNING_ALGS.join(', ')}`);
  }
  const signing = alg === undefined ? {} : { tokenEndpointAuthSigningAlg: alg as string };
  if (meta.jwks !== undefined) {
    const problem = jwksProblem(meta.jwks);
    if (problem) fail(`jwks ${problem}`);
    if (Buffer.byteLength(JSON.stringify(meta.jwks)) > MAX_INLINE_JWKS_BYTES) fail(`jwks is larger than ${MAX_INLINE_JWKS_BYTES / 1024} KB`);
    const keys = (meta.jwks as { keys: PublicJwk[] }).keys.map(publicMembers);
    return { jwks: { keys }, ...signing };
  }
  const problem = jwksUriProblem(meta.jwks_uri);
  if (problem) fail(`jwks_uri ${problem}`);
  return { jwksUri: meta.jwks_uri as string, ...signing };
}

/** RFC 7517 §4, RFC 7518 §6.2.1, §6.3.1, RFC 8037 §2: the members a public verification key needs. */
const PUBLIC_MEMBERS = ['kty', 'kid', 'alg', 'use', 'key_ops', 'n', 'e', 'crv', 'x', 'y'];

function publicMembers(jwk: PublicJwk): PublicJwk {
  return Object.fromEntries(Object.entries(jwk).filter(([name]) => PUBLIC_MEMBERS.includes(name))) as PublicJwk;
}

export interface ClientKeySetBounds extends DocumentCacheBounds {
  /** An unknown `kid` makes the server fetch a `jwks_uri` again only if its copy is at least this old. */
  refetchAfterMs: number;
}

/** Fewer key sets than documents are kept: only private_key_jwt clients have them. */
export const DEFAULT_KEY_SET_BOUNDS: ClientKeySetBounds = { ...DEFAULT_CACHE_BOUNDS, maxEntries: 200, refetchAfterMs: 30_000 };

/** The keys a client's assertions are verified with, from its record or its `jwks_uri` (cached). */
export class ClientKeySets {
  private readonly cache: FetchCache<{ keys: PublicJwk[] }>;
  private readonly bounds: ClientKeySetBounds;

  constructor(
    private readonly fetcher: ClientMetadataFetcher,
    clock: Clock,
    bounds: Partial<ClientKeySetBounds> = {},
  ) {
    this.bounds = { ...DEFAULT_KEY_SET_BOUNDS, ...bounds };
    this.cache = new FetchCache(clock, this.bounds, {
      busy: 'too many client key sets are being fetched right now; try again in a moment',
      failed: "the client's JWK Set (jwks_uri) could not be fetched",
    });
  }

  /**
   * The client's JWK Set. `refetch`: the set did not hold the key an assertion named; fetch the
   * `jwks_uri` again (keys rotate), unless the copy is younger than `refetchAfterMs`.
   */
  async keySetOf(client: ClientRecord, options: { refetch?: boolean } = {}): Promise<{ keys: PublicJwk[] }> {
    if (client.jwks) return client.jwks;
    const uri = client.jwksUri;
    if (!uri) throw new MetadataDocumentError('this client has no keys (jwks or jwks_uri) to verify a client assertion with');
    return this.cache.get(uri, () => this.fetchKeySet(uri), options.refetch ? { reloadAfterMs: this.bounds.refetchAfterMs } : {});
  }

  private async fetchKeySet(uri: string): Promise<{ value: { keys: PublicJwk[] }; ttlMs: number }> {
    const fetched = await this.fetcher.fetch(uri, 'JWK Set').catch((error: unknown) => {
      throw FetchFailedError.from(error, "the client's JWK Set could not be fetched");
    });
    const body = fetchedJson(fetched, "the client's JWK Set (its jwks_uri)", 'application/json or application/jwk-set+json');
    const problem = jwksProblem(body);
    if (problem) throw new MetadataDocumentError(`the client's JWK Set ${problem}`);
    // Only what verifying needs is kept: a 64 KB answer full of other members costs nothing.
    return { value: { keys: (body as { keys: PublicJwk[] }).keys.map(publicMembers) }, ttlMs: documentLifetime(fetched, this.bounds) };
  }
}
