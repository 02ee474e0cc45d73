import type { AccessTokenRecord, ClientRecord, RefreshTokenRecord, Store, TokenEndpointAuthMethod } from '../store/types.js';
import type { EventLog, NewEvent } from '../store/event-log.js';
import type { Clock } from '../shared/clock.js';
import { tokenIdFromHash } from '../shared/ids.js';
import {
  InvalidClientError,
  InvalidGrantError,
  InvalidRequestError,
  InvalidScopeError,
  InvalidTargetError,
  InvalidTokenError,
  UnauthorizedClientError,
} from './errors.js';
import { isValidCodeVerifier, verifyCodeVerifier } from './pkce.js';
import { isOurResource, resolveResource } from './resource.js';
import { parseScope } from './scopes.js';
import { generateAccessToken, generateRefreshToken, hashSecret } from './secrets.js';
import { recordRevokedTokens, revokeGrant, revokeTokens } from './revoke.js';
import { OFFLINE_ACCESS, type OAuthSettings } from './settings.js';

export interface OAuthDeps {
  store: Store;
  events: EventLog;
  clock: Clock;
  settings: OAuthSettings;
}

/** Who is asking, for the audit log. */
export interface RequestMeta {
  ip?: string | undefined;
  userAgent?: string | undefined;
}

export function audit(deps: OAuthDeps, meta: RequestMeta, event: NewEvent): void {
  deps.events.record({ ...event, ...(meta.ip ? { ip: meta.ip } : {}), ...(meta.userAgent ? { user_agent: meta.userAgent } : {}) });
}

/** RFC 6749 §5.1 successful token response. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  refresh_token?: string;
}

interface GrantShape {
  clientId: string;
  grantId: string;
  scopes: string[];
  resource: string;
  clientAuthMethod?: RefreshTokenRecord['clientAuthMethod'];
}

function newTokens(grant: GrantShape, deps: OAuthDeps, withRefresh: boolean) {
  const now = deps.clock.now();
  const accessToken = generateAccessToken();
  const accessHash = hashSecret(accessToken);
  const access: AccessTokenRecord = {
    id: tokenIdFromHash(accessHash),
    tokenHash: accessHash,
    clientId: grant.clientId,
    grantId: grant.grantId,
    scopes: grant.scopes,
    resource: grant.resource,
    createdAt: now,
    expiresAt: now + deps.settings.accessTokenTtlMs,
    lastUsedAt: null,
    revokedAt: null,
  };
  let refreshToken: string | undefined;
  let refresh: RefreshTokenRecord | undefined;
  if (withRefresh) {
    refreshToken = generateRefreshToken();
    const refreshHash = hashSecret(refreshToken);
    refresh = {
      id: tokenIdFromHash(refreshHash),
      tokenHash: refreshHash,
      clientId: grant.clientId,
      grantId: grant.grantId,
      scopes: grant.scopes,
      resource: grant.resource,
      createdAt: now,
      expiresAt: now + deps.settings.refreshTokenTtlMs,
      rotatedAt: null,
      revokedAt: null,
      ...(grant.clientAuthMethod ? { clientAuthMethod: grant.clientAuthMethod } : {}),
    };
  }
  const response: TokenResponse = {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: Math.floor(deps.settings.accessTokenTtlMs / 1000),
    scope: grant.scopes.join(' '),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
  return { access, refresh, response };
}

function mayRefresh(client: ClientRecord, settings: OAuthSettings): boolean {
  return settings.refreshTokens && client.grantTypes.includes('refresh_token');
}

/**
 * RFC 6749 §4.1.3 + RFC 7636 §4.6: exchanges a single-use code. The code must belong to the
 * authenticated client, be unexpired and unused; `redirect_uri` must repeat the one used at
 * /authorize when it was sent there; the verifier must match the S256 challenge.
 */
export async function exchangeAuthorizationCode(
  client: ClientRecord,
  params: {
    code?: string | undefined;
    codeVerifier?: string | undefined;
    redirectUri?: string | undefined;
    resource?: string | undefined;
    authMethod?: TokenEndpointAuthMethod | undefined;
  },
  deps: OAuthDeps,
  meta: RequestMeta,
): Promise<TokenResponse> {
  if (!params.code) throw new InvalidRequestError('code is required');
  if (!params.codeVerifier) throw new InvalidRequestError('code_verifier is required (PKCE, RFC 7636 §4.5)');
  if (!isValidCodeVerifier(params.codeVerifier)) throw new InvalidRequestError('code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)');
  if (params.code.length > 512) throw new InvalidGrantError('invalid authorization code');

  const now = deps.clock.now();
  // RFC 6749 §4.1.3: the code must have been issued to this client. Checked inside the same
  // atomic step, so another client can neither burn the code nor set off the replay revocation.
  const result = await deps.store.consumeCode(hashSecret(params.code), now, client.clientId);
  if (result.outcome === 'unknown') throw new InvalidGrantError('invalid authorization code');
  if (result.outcome === 'other_client') throw new InvalidGrantError('authorization code was issued to another client');
  const code = result.code;
  if (result.outcome === 'replayed') {
    // RFC 6749 §4.1.2 / §10.5: a replayed code revokes every token it issued.
    audit(deps, meta, { type: 'code.replayed', client_id: client.clientId, detail: { grant_id: code.grantId } });
    await revokeGrant(deps, code.grantId, { by: 'serve', reason: 'authorization code replayed' }, meta);
    throw new InvalidGrantError('authorization code was already used');
  }
  if (code.expiresAt <= now) throw new InvalidGrantError('authorization code has expired');
  // RFC 6749 §4.1.3: identical redirect_uri when it was included in the authorization request.
  if (code.redirectUriProvided || params.redirectUri !== undefined) {
    if (params.redirectUri !== code.redirectUri) {
      throw new InvalidGrantError(
        params.redirectUri === undefined
          ? 'redirect_uri is required: it was sent with the authorization request'
          : 'redirect_uri does not match the authorization request',
      );
    }
  }
  if (!verifyCodeVerifier(params.codeVerifier, code.codeChallenge))
    throw new InvalidGrantError('code_verifier does not match the code_challenge (RFC 7636 §4.6)');
  // RFC 8707 §2.2: a resource at the token endpoint may only repeat the one that was authorized.
  if (params.resource !== undefined && params.resource !== '') {
    const resource = resolveResource(params.resource, deps.settings);
    if (resource !== code.resource) throw new InvalidTargetError('resource differs from the one that was authorized');
  }

  const withRefresh = mayRefresh(client, deps.settings);
  // RFC 6749 §3.3: the response names the scope actually granted. offline_access stands for a
  // refresh token, so a client that receives none (it did not register the grant) is not granted it.
  const scopes = withRefresh ? code.scopes : code.scopes.filter((s) => s !== OFFLINE_ACCESS);
  // A grant issued to a client that proved itself with a key is refreshed only with that proof
  // (RFC 6749 §6): a document that also allows "none" must not turn its refresh token into a bearer secret.
  const clientAuthMethod = params.authMethod === 'private_key_jwt' ? ('private_key_jwt' as const) : undefined;
  const { access, refresh, response } = newTokens({ ...code, scopes, ...(clientAuthMethod ? { clientAuthMethod } : {}) }, deps, withRefresh);
  await deps.store.saveTokens(access, refresh);
  audit(deps, meta, {
    type: 'token.issued',
    client_id: client.clientId,
    token_id: access.id,
    detail: { grant: 'authorization_code', scope: response.scope, resource: access.resource, refresh: refresh !== undefined },
  });
  return response;
}

/**
 * RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1): each use returns a new refresh token; the old one
 * stays valid for the grace window, after which presenting it revokes the whole grant.
 */
export async function refreshAccessToken(
  client: ClientRecord,
  params: { refreshToken?: string | undefined; scope?: string | undefined; resource?: string | undefined; authMethod?: TokenEndpointAuthMethod | undefined },
  deps: OAuthDeps,
  meta: RequestMeta,
): Promise<TokenResponse> {
  if (!deps.settings.refreshTokens || !client.grantTypes.includes('refresh_token')) {
    throw new UnauthorizedClientError('the refresh_token grant is not enabled for this client');
  }
  if (!params.refreshToken) throw new InvalidRequestError('refresh_token is required');
  const hash = hashSecret(params.refreshToken);
  const current = params.refreshToken.length <= 512 ? await deps.store.findRefreshToken(hash) : undefined;
  if (!current || current.clientId !== client.clientId) throw new InvalidGrantError('invalid refresh token');
  // RFC 6749 §6: the client authenticates as it did when the grant was issued.
  if (current.clientAuthMethod === 'private_key_jwt' && params.authMethod !== 'private_key_jwt') {
    throw new InvalidClientError(
      'this grant was issued to the client authenticated with private_key_jwt: refresh it with a client assertion (RFC 6749 section 6)',
    );
  }

  // RFC 6749 §6: a narrower scope may be asked for, never a wider one.
  let scopes = current.scopes;
  if (params.scope !== undefined && params.scope !== '') {
    const asked = parseScope(params.scope).filter((s) => s !== OFFLINE_ACCESS || current.scopes.includes(OFFLINE_ACCESS));
    const wider = asked.filter((s) => !current.scopes.includes(s));
    if (wider.length > 0) throw new InvalidScopeError('the requested scope exceeds the scope originally granted');
    if (asked.length > 0) scopes = asked;
  }
  if (params.resource !== undefined && params.resource !== '' && resolveResource(params.resource, deps.settings) !== current.resource) {
    throw new InvalidTargetError('resource differs from the one that was authorized');
  }

  const now = deps.clock.now();
  const next = newTokens({ ...current, scopes }, deps, true);
  const result = await deps.store.rotateRefreshToken(hash, { access: next.access, refresh: next.refresh! }, now, deps.settings.refreshGraceMs);
  if (result.outcome === 'invalid') throw new InvalidGrantError('invalid refresh token');
  if (result.outcome === 'reuse_detected') {
    audit(deps, meta, {
      type: 'token.reuse_detected',
      client_id: client.clientId,
      token_id: result.previous.id,
      detail: { grant_id: result.previous.grantId },
    });
    recordRevokedTokens(deps, result.revoked, { by: 'serve', reason: 'refresh token reuse' }, meta);
    throw new InvalidGrantError('refresh token was already used; every token of this grant is revoked');
  }
  audit(deps, meta, {
    type: 'token.refreshed',
    client_id: client.clientId,
    token_id: next.access.id,
    detail: { previous_refresh_token: result.previous.id, scope: next.response.scope },
  });
  return next.response;
}

/**
 * RFC 7009 §2.1: revokes an access or refresh token of the authenticated client. Unknown and
 * already invalid tokens answer 200 (§2.2); a refresh token takes its grant's access tokens along.
 */
export async function revokeToken(
  client: ClientRecord,
  params: { token?: string | undefined; tokenTypeHint?: string | undefined },
  deps: OAuthDeps,
  meta: RequestMeta,
): Promise<void> {
  if (params.token === undefined) throw new InvalidRequestError('token is required (RFC 7009 §2.1)');
  if (params.token.length === 0 || params.token.length > 512) return;
  const hash = hashSecret(params.token);
  const now = deps.clock.now();
  const access = await deps.store.findAccessToken(hash);
  if (access) {
    if (access.clientId !== client.clientId) throw new InvalidRequestError('the token was not issued to this client (RFC 7009 §2.1)');
    await revokeTokens(deps, { ids: [access.id] }, { by: 'client' }, meta);
    return;
  }
  const refresh = await deps.store.findRefreshToken(hash);
  if (refresh) {
    if (refresh.clientId !== client.clientId) throw new InvalidRequestError('the token was not issued to this client (RFC 7009 §2.1)');
    // RFC 7009 §2.1: the refresh token takes the access tokens of its grant along.
    if (await deps.store.revokeRefreshToken(hash, now)) recordRevokedTokens(deps, [refresh], { by: 'client', reason: 'refresh token revoked' }, meta);
    await revokeGrant(deps, refresh.grantId, { by: 'client', reason: 'refresh token revoked' }, meta);
  }
}

/**
 * Verifies bearer tokens for the resource server (the shape of the MCP SDK's
 * `requireBearerAuth({ verifier })`): resolves what the token grants, or rejects with a
 * TokenRejectedError saying why. The default verifies this server's own tokens (verifyAccessToken).
 */
export interface TokenVerifier {
  verifyAccessToken(token: string | undefined): Promise<VerifiedToken>;
}

/** What the resource server learns from a valid access token. */
export interface VerifiedToken {
  tokenId: string;
  tokenHash: string;
  clientId: string;
  grantId: string;
  scopes: string[];
  resource: string;
  expiresAt: number;
}

/** Why a token was refused: the `detail` of `token.rejected` events. */
export type RejectReason = 'missing' | 'malformed' | 'unknown' | 'expired' | 'revoked' | 'wrong audience';

export class TokenRejectedError extends InvalidTokenError {
  constructor(
    readonly reason: RejectReason,
    readonly token?: Pick<VerifiedToken, 'tokenId' | 'clientId'>,
  ) {
    super(reason === 'missing' ? 'an access token is required' : `the access token is ${reason === 'wrong audience' ? 'not for this server' : reason}`);
  }
}

const ACCESS_TOKEN = /^mcp_[0-9a-f]{32}$/;

/**
 * RFC 6750 + RFC 8707 audience: verifies an access token from memory (no I/O on the hot path)
 * and records its use for the batched `last_used_at`.
 */
export async function verifyAccessToken(token: string | undefined, deps: Pick<OAuthDeps, 'store' | 'clock' | 'settings'>): Promise<VerifiedToken> {
  if (token === undefined || token === '') throw new TokenRejectedError('missing');
  if (!ACCESS_TOKEN.test(token)) throw new TokenRejectedError('malformed');
  const hash = hashSecret(token);
  const record = await deps.store.findAccessToken(hash);
  if (!record) throw new TokenRejectedError('unknown');
  const ref = { tokenId: record.id, clientId: record.clientId };
  if (record.revokedAt !== null) throw new TokenRejectedError('revoked', ref);
  const now = deps.clock.now();
  if (record.expiresAt <= now) throw new TokenRejectedError('expired', ref);
  if (!isOurResource(record.resource, deps.settings)) throw new TokenRejectedError('wrong audience', ref);
  deps.store.touchAccessToken(hash, now);
  return {
    tokenId: record.id,
    tokenHash: hash,
    clientId: record.clientId,
    grantId: record.grantId,
    scopes: record.scopes,
    resource: record.resource,
    expiresAt: record.expiresAt,
  };
}
