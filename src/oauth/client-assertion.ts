import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { ClientRecord, Store } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import { sha256Hex } from '../shared/ids.js';
import { ASSERTION_SIGNING_ALGS, type ClientKeySets } from './client-keys.js';
import { InvalidClientError } from './errors.js';
import { MetadataDocumentError } from './fetch-cache.js';
import type { OAuthSettings } from './settings.js';

/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2, §3; RFC 7521 §4.2): the client signs a
 * short-lived JWT with a key whose public half it published (`jwks` or `jwks_uri`) and sends it as
 * `client_assertion`. Every failure is 401 invalid_client, with a description naming the rule.
 */

/** RFC 7523 §2.2: the only `client_assertion_type` this server accepts. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** RFC 7523 §3 item 4: a short lifetime; with the skew, what the `jti` store must remember. */
export const MAX_ASSERTION_LIFETIME_S = 600;
/** Clock difference tolerated between the client and this server (RFC 7519 §4.1.4 "leeway"). */
export const CLOCK_SKEW_S = 60;
const MAX_ASSERTION_LENGTH = 16 * 1024;
const MAX_JTI_LENGTH = 256;
const TYPES = ['jwt', 'client-authentication+jwt', 'application/client-authentication+jwt'];

function refuse(reason: string): never {
  throw new InvalidClientError(`client assertion refused: ${reason}`, reason);
}

/** The `iss` an assertion claims (the client it is for), read before anything is verified. */
export function assertionIssuer(assertion: string): string | undefined {
  if (assertion.length > MAX_ASSERTION_LENGTH) refuse(`it is longer than ${MAX_ASSERTION_LENGTH} characters`);
  let claims: JWTPayload;
  try {
    claims = decodeJwt(assertion);
  } catch {
    refuse('it is not a signed JWT (RFC 7523 section 2.2)');
  }
  return typeof claims.iss === 'string' ? claims.iss : undefined;
}

export interface AssertionDeps {
  store: Store;
  clock: Clock;
  settings: OAuthSettings;
  keys: ClientKeySets;
}

/**
 * Verifies `assertion` as `client`'s authentication at `endpoint` (the URL it was sent to).
 * RFC 7523 §3: `iss` and `sub` are the client id; `aud` names this authorization server (its
 * issuer, its token endpoint, or the endpoint the assertion was sent to); `exp` is in the future
 * and at most MAX_ASSERTION_LIFETIME_S after `iat`; the `jti` is used once (kept in the store until
 * `exp`, so the rule holds across processes); the signature verifies with one of the client's
 * keys under an asymmetric algorithm, fetching a `jwks_uri` again once when the key is unknown.
 */
export async function verifyClientAssertion(assertion: string, client: ClientRecord, endpoint: string, deps: AssertionDeps): Promise<void> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(assertion);
  } catch {
    refuse('its header cannot be read (RFC 7515 section 4)');
  }
  const alg: unknown = header.alg;
  // draft-ietf-oauth-rfc7523bis §5: explicit typing; a JWT made for another use (an access token,
  // at+jwt) is not a client assertion. Untyped and plain "JWT" assertions are what clients send today.
  if (header.typ !== undefined && !TYPES.includes(String(header.typ).toLowerCase())) {
    refuse(`its typ ${JSON.stringify(String(header.typ).slice(0, 40))} is not a client assertion's (JWT or client-authentication+jwt)`);
  }
  if (typeof alg !== 'string' || !(ASSERTION_SIGNING_ALGS as readonly string[]).includes(alg)) {
    refuse(`it is signed with ${JSON.stringify(String(alg).slice(0, 20))}; this server accepts only ${ASSERTION_SIGNING_ALGS.join(', ')}`);
  }
  // OpenID Connect Registration §2: a registered signing algorithm is the only one accepted.
  if (client.tokenEndpointAuthSigningAlg !== undefined && alg !== client.tokenEndpointAuthSigningAlg) {
    refuse(`it is signed with ${alg}, but the client registered token_endpoint_auth_signing_alg ${client.tokenEndpointAuthSigningAlg}`);
  }

  const { issuer } = deps.settings;
  const options = {
    algorithms: [alg],
    issuer: client.clientId,
    subject: client.clientId,
    audience: [...new Set([issuer, `${issuer}/token`, endpoint])],
    clockTolerance: CLOCK_SKEW_S,
    currentDate: new Date(deps.clock.now()),
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
  };
  const verify = async (refetch: boolean) => {
    let keys;
    try {
      keys = await deps.keys.keySetOf(client, { refetch });
    } catch (error) {
      if (error instanceof MetadataDocumentError) refuse(error.message);
      throw error;
    }
    const keySet = createLocalJWKSet(keys as Parameters<typeof createLocalJWKSet>[0]);
    try {
      return await jwtVerify(assertion, keySet, options);
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      // Several keys fit an assertion without a kid: each is tried, as RFC 7517 §4.5 leaves kid optional.
      for await (const candidate of error) {
        try {
          return await jwtVerify(assertion, candidate, options);
        } catch (failure) {
          if (!(failure instanceof errors.JWSSignatureVerificationFailed)) throw failure;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  };
  let payload: JWTPayload;
  try {
    try {
      payload = (await verify(false)).payload;
    } catch (error) {
      // Keys rotate: a kid we do not know may be in a newer copy of the jwks_uri.
      if (!(error instanceof errors.JWKSNoMatchingKey) || !client.jwksUri) throw error;
      payload = (await verify(true)).payload;
    }
  } catch (error) {
    if (error instanceof InvalidClientError) throw error;
    refuse(reasonOf(error, client));
  }

  const now = Math.floor(deps.clock.now() / 1000);
  const exp = payload.exp!;
  const iat = payload.iat;
  if (iat !== undefined && iat > now + CLOCK_SKEW_S) refuse('it was issued in the future (iat)');
  if (exp - (iat ?? now) > MAX_ASSERTION_LIFETIME_S || exp > now + MAX_ASSERTION_LIFETIME_S + CLOCK_SKEW_S) {
    refuse(
      `it is valid for more than ${MAX_ASSERTION_LIFETIME_S / 60} minutes (exp); sign a fresh, short-lived assertion for each request (RFC 7523 section 3)`,
    );
  }
  const jti: unknown = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH)
    refuse(`its jti must be a string of 1 to ${MAX_JTI_LENGTH} characters (RFC 7519 section 4.1.7)`);
  // RFC 7523 §3 item 7: the jti is remembered (hashed with the client id, bounded in size) until
  // the assertion could no longer be accepted anyway.
  const first = await deps.store.useAssertionId(sha256Hex(`${client.clientId}\n${jti}`), (exp + CLOCK_SKEW_S) * 1000, deps.clock.now());
  if (!first) refuse('it was already used (the same jti was presented before; RFC 7523 section 3)');
}

/** What a jose failure means, in words that tell the client's developer which rule failed. */
function reasonOf(error: unknown, client: ClientRecord): string {
  if (error instanceof errors.JWTExpired) return 'it has expired (exp)';
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'iss':
        return 'its iss must be the client_id (RFC 7523 section 3)';
      case 'sub':
        return 'its sub must be the client_id (RFC 7523 section 3)';
      case 'aud':
        return 'its aud must name this authorization server: its issuer or its token endpoint URL (RFC 7523 section 3)';
      case 'nbf':
        return 'it is not valid yet (nbf)';
      default:
        return `its ${error.claim} claim is missing or invalid (RFC 7523 section 3)`;
    }
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return client.jwksUri ? "no key in the client's jwks_uri matches it (kid and algorithm)" : "no key in the client's jwks matches it (kid and algorithm)";
  }
  if (error instanceof errors.JWKSMultipleMatchingKeys) return "several of the client's keys match it; name one with kid";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "its signature does not verify with the client's keys";
  if (error instanceof errors.JOSEAlgNotAllowed) return 'its algorithm is not allowed';
  if (error instanceof errors.JOSENotSupported) return 'it uses a header parameter, algorithm or key type this server does not support (crit, b64)';
  return 'it is not a valid signed JWT (RFC 7523 section 2.2)';
}
