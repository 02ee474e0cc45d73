import type { Context } from 'koa';
import type { Config } from '../config/schema.js';
import type { OwnerLoginThrottle, PendingAuthorizationStore } from '../oauth/shared-state.js';
import type { ClientKeySets } from '../oauth/client-keys.js';
import type { ClientMetadataDocuments } from '../oauth/client-metadata-document.js';
import type { OAuthDeps, RequestMeta, TokenVerifier } from '../oauth/tokens.js';
import type { Logger } from '../shared/logger.js';
import type { AbuseLimits } from './limits.js';
import type { OncePerWindow } from './middleware/rate-limit.js';
import type { AddressCounter } from './middleware/shared-windows.js';
import type { SharedEphemeralState } from '../store/ephemeral.js';
import { audit } from '../oauth/tokens.js';
import type { NewEvent } from '../store/event-log.js';
import type { SessionRelay } from '../store/relay.js';

/** Everything a route needs, built once per app. */
export interface ServerContext extends OAuthDeps {
  config: Config;
  logger: Logger;
  pending: PendingAuthorizationStore;
  loginThrottle: OwnerLoginThrottle;
  /** Clients identified by a client metadata document URL (CIMD), resolved through a bounded cache. */
  clientDocuments: ClientMetadataDocuments;
  /** Public keys of private_key_jwt clients (inline, or their jwks_uri through a bounded cache). */
  clientKeys: ClientKeySets;
  /** Verifies the bearer token of every protected request (AppDeps.tokenVerifier). */
  tokenVerifier: TokenVerifier;
  /** Per-address request limits and per-client caps (limits.ts). */
  limits: AbuseLimits;
  /** Unknown or malformed bearer tokens presented, per address. */
  bearerFailures: AddressCounter;
  /** Expired, revoked or wrong-audience tokens presented, per address. */
  staleBearers: AddressCounter;
  /** Which refusals were already logged in the current window (limits.rejectionLogWindowMs). */
  rejectionsLogged: OncePerWindow;
  /** Set when replicas share state in Redis (DESIGN.md §6): rate limits count across them. */
  shared?: SharedEphemeralState;
  /** Set when replicas share Redis: reaches MCP sessions held by another replica. */
  relay?: SessionRelay;
}

/**
 * Logs a refusal that proves nothing at most once per address and `key` per window, so that
 * unauthenticated traffic cannot flood the audit log (it goes to the rejections file, REJECTION_TYPES).
 */
export function auditRejection(server: ServerContext, ctx: Context, key: string, event: NewEvent): void {
  if (server.rejectionsLogged.first(`${ctx.ip || 'unknown'}\u0000${key}`)) audit(server, requestMeta(ctx), event);
}

/** The client address (from X-Forwarded-For only with trustProxy) and user agent, for the audit log. */
export function requestMeta(ctx: Context): RequestMeta {
  const userAgent = ctx.get('User-Agent');
  return { ip: ctx.ip || undefined, userAgent: userAgent || undefined };
}

/**
 * A single-valued parameter (RFC 6749 §3.1, §3.2: parameters MUST NOT be repeated), or undefined.
 */
export function param(source: unknown, name: string): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined;
  const value = (source as Record<string, unknown>)[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  return undefined;
}

/** Names of parameters present more than once or not as plain strings. */
export function malformedParams(source: unknown, names: readonly string[]): string[] {
  if (typeof source !== 'object' || source === null) return [];
  const record = source as Record<string, unknown>;
  return names.filter((n) => record[n] !== undefined && record[n] !== null && typeof record[n] !== 'string');
}
