import type { EventLog } from '../store/event-log.js';
import type { AccessTokenRecord, ClientRecord, Store, TokenSelector } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import type { RequestMeta } from './tokens.js';

/**
 * Revocation in one place (as node-oidc-provider's lib/helpers/revoke.js): the helper that changes
 * the store also records what it changed, one `token.revoked` per access token that stopped working
 * and one `client.removed` per client, with the same detail whoever asked. Callers never write these
 * events themselves.
 */

/** Who revoked: the client itself (RFC 7009), the owner through a command or the home page, or the server's own rules. */
export type RevokedBy = 'client' | 'cli' | 'home page' | 'doctor' | 'serve';

export interface Revocation {
  by: RevokedBy;
  /** Why, when it is not the caller's plain wish: "authorization code replayed", "refresh token reuse", "client removed", … */
  reason?: string;
}

export interface RevokeDeps {
  store: Store;
  events?: EventLog | undefined;
  clock: Clock;
}

function withMeta(meta: RequestMeta): { ip?: string; user_agent?: string } {
  return { ...(meta.ip ? { ip: meta.ip } : {}), ...(meta.userAgent ? { user_agent: meta.userAgent } : {}) };
}

function recordRevoked(deps: RevokeDeps, tokens: ReadonlyArray<Pick<AccessTokenRecord, 'id' | 'clientId'>>, revocation: Revocation, meta: RequestMeta): void {
  for (const token of tokens) {
    deps.events?.record({ type: 'token.revoked', client_id: token.clientId, token_id: token.id, ...withMeta(meta), detail: { ...revocation } });
  }
}

/** Revokes the selected access tokens (and the refresh tokens of their grants); returns those newly revoked. */
export async function revokeTokens(deps: RevokeDeps, selector: TokenSelector, revocation: Revocation, meta: RequestMeta = {}): Promise<AccessTokenRecord[]> {
  const revoked = await deps.store.revokeAccessTokens(selector, deps.clock.now());
  recordRevoked(deps, revoked, revocation, meta);
  return revoked;
}

/** Revokes every access and refresh token of a grant (RFC 6749 §4.1.2 code replay, refresh reuse, a refresh token revoked). */
export async function revokeGrant(deps: RevokeDeps, grantId: string, revocation: Revocation, meta: RequestMeta = {}): Promise<AccessTokenRecord[]> {
  const revoked = await deps.store.revokeGrant(grantId, deps.clock.now());
  recordRevoked(deps, revoked, revocation, meta);
  return revoked;
}

/**
 * Tokens the store already revoked in a change of its own (refresh reuse is detected and revoked
 * in one atomic write): recorded like any other revocation.
 */
export function recordRevokedTokens(
  deps: RevokeDeps,
  tokens: ReadonlyArray<Pick<AccessTokenRecord, 'id' | 'clientId'>>,
  revocation: Revocation,
  meta: RequestMeta = {},
): void {
  recordRevoked(deps, tokens, revocation, meta);
}

/**
 * Deletes a client and revokes every token it holds: one `token.revoked` per token (reason
 * "client removed") and one `client.removed` with `extra` (why, and what else the caller knows).
 * Undefined when the client was not there (or, with `ifAbandonedBefore`, no longer abandoned).
 */
export async function removeClient(
  deps: RevokeDeps,
  clientId: string,
  by: RevokedBy,
  extra: Record<string, unknown> = {},
  options: { ifAbandonedBefore?: number } = {},
): Promise<{ client: ClientRecord; revokedTokens: AccessTokenRecord[] } | undefined> {
  const result = await deps.store.removeClient(clientId, deps.clock.now(), options);
  if (!result) return undefined;
  recordRevoked(deps, result.revokedTokens, { by, reason: 'client removed' }, {});
  deps.events?.record({
    type: 'client.removed',
    client_id: clientId,
    detail: { by, client_name: result.client.clientName, revoked_tokens: result.revokedTokens.length, ...extra },
  });
  return result;
}
