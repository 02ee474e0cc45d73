import type { AccessTokenRecord, ClientRecord } from '../store/types.js';
import { newUuid, tokenIdFromHash } from '../shared/ids.js';
import { InvalidRequestError, InvalidScopeError } from './errors.js';
import { parseScope } from './scopes.js';
import { generateAccessToken, hashSecret } from './secrets.js';
import { OFFLINE_ACCESS, type OAuthSettings } from './settings.js';
import { audit, type OAuthDeps, type RequestMeta } from './tokens.js';

/**
 * The server's own client: a public client (PKCE, no secret, RFC 8252 §8.4 style) whose only
 * redirect is `<base>/oauth/callback` on this server. The home page signs in with it to prove a
 * deployment end to end, and `tokens create` issues personal access tokens to it.
 */
export const FIRST_PARTY_CLIENT_NAME = 'cupcake-mcp (built-in)';
export const FIRST_PARTY_CALLBACK_PATH = '/oauth/callback';

export function firstPartyRedirectUri(issuer: string): string {
  return `${issuer}${FIRST_PARTY_CALLBACK_PATH}`;
}

/**
 * Makes sure the first-party client exists and redirects to this issuer's callback (the base URL
 * may have changed since it was created). Idempotent, and safe against other processes doing the
 * same; creation and a moved redirect are logged.
 */
export async function ensureFirstPartyClient(deps: OAuthDeps, meta: RequestMeta, by: string): Promise<ClientRecord> {
  const candidate: ClientRecord = {
    clientId: newUuid(),
    clientSecretHash: null,
    clientName: FIRST_PARTY_CLIENT_NAME,
    redirectUris: [firstPartyRedirectUri(deps.settings.issuer)],
    tokenEndpointAuthMethod: 'none',
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    scope: null,
    extraMetadata: {},
    createdAt: deps.clock.now(),
    lastUsedAt: null,
    firstParty: true,
  };
  const { client, outcome } = await deps.store.ensureFirstPartyClient(candidate);
  if (outcome === 'created') {
    audit(deps, meta, { type: 'client.registered', client_id: client.clientId, detail: { first_party: true, by, redirect_uris: client.redirectUris } });
  } else if (outcome === 'updated') {
    audit(deps, meta, { type: 'client.updated', client_id: client.clientId, detail: { first_party: true, by, redirect_uris: client.redirectUris } });
  }
  return client;
}

/** The longest a personal access token may live: a forgotten script credential should still end. */
export const MAX_PERSONAL_TOKEN_TTL_MS = 366 * 86_400_000;
const MAX_LABEL = 100;

export interface PersonalTokenRequest {
  /** What the owner calls it (`--name`); shown by `tokens list`. */
  label?: string | undefined;
  ttlMs: number;
  /** Space-separated; default: the configured scopes. */
  scope?: string | undefined;
}

/** A personal token request after its checks: what `issuePersonalAccessToken` stores. */
export interface CheckedPersonalTokenRequest {
  label: string | undefined;
  ttlMs: number;
  scopes: string[];
}

/**
 * Checks a personal token request before anything is written: a lifetime within bounds, a
 * printable name, scopes the server is configured with (`offline_access` is not one: personal
 * tokens are not refreshed).
 */
export function checkPersonalTokenRequest(request: PersonalTokenRequest, settings: OAuthSettings): CheckedPersonalTokenRequest {
  if (!Number.isFinite(request.ttlMs) || request.ttlMs <= 0) throw new InvalidRequestError('the lifetime must be positive');
  if (request.ttlMs > MAX_PERSONAL_TOKEN_TTL_MS) throw new InvalidRequestError('the lifetime may be at most 366 days');
  const label = request.label?.trim();
  if (label !== undefined) {
    if (label.length === 0) throw new InvalidRequestError('the name must not be empty');
    if (label.length > MAX_LABEL) throw new InvalidRequestError(`the name may be at most ${MAX_LABEL} characters`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(label)) throw new InvalidRequestError('the name must not contain control characters');
  }
  let scopes = [...settings.scopes];
  if (request.scope !== undefined) {
    const asked = [...new Set(parseScope(request.scope))];
    if (asked.length === 0) throw new InvalidScopeError('the scope must name at least one scope');
    const unknown = asked.filter((s) => !settings.scopes.includes(s));
    if (unknown.length > 0) {
      const why = unknown.includes(OFFLINE_ACCESS) ? ' (personal access tokens are not refreshed)' : '';
      throw new InvalidScopeError(`unknown scope${unknown.length > 1 ? 's' : ''}: ${unknown.join(' ')}${why}; configured: ${settings.scopes.join(' ')}`);
    }
    scopes = asked;
  }
  return { label, ttlMs: request.ttlMs, scopes };
}

/**
 * A personal access token for scripts: an access token of the first-party client, issued by the
 * owner directly (no authorization request), stored as its hash like every other. Its resource
 * is the origin resource, so the audience check accepts it at /mcp, /sse and /tools alike
 * (RFC 8707: the origin names the whole protected resource server).
 */
export async function issuePersonalAccessToken(
  client: ClientRecord,
  request: PersonalTokenRequest,
  deps: OAuthDeps,
  meta: RequestMeta,
): Promise<{ token: string; record: AccessTokenRecord }> {
  if (client.firstParty !== true) throw new InvalidRequestError('personal access tokens belong to the first-party client');
  const { label, ttlMs, scopes } = checkPersonalTokenRequest(request, deps.settings);

  const now = deps.clock.now();
  const token = generateAccessToken();
  const tokenHash = hashSecret(token);
  const record: AccessTokenRecord = {
    id: tokenIdFromHash(tokenHash),
    tokenHash,
    clientId: client.clientId,
    grantId: newUuid(),
    scopes,
    resource: deps.settings.issuer,
    createdAt: now,
    expiresAt: now + ttlMs,
    lastUsedAt: null,
    revokedAt: null,
    ...(label !== undefined ? { label } : {}),
  };
  await deps.store.saveTokens(record);
  audit(deps, meta, {
    type: 'token.issued',
    client_id: client.clientId,
    token_id: record.id,
    detail: {
      grant: 'personal_access_token',
      ...(label !== undefined ? { label } : {}),
      scope: scopes.join(' '),
      resource: record.resource,
      expires_at: new Date(record.expiresAt).toISOString(),
    },
  });
  return { token, record };
}
