import type { Context, Next } from 'koa';
import type { AuthInfo } from '@modelcontextprotocol/server';
import { TokenRejectedError, audit, verifyAccessToken, type VerifiedToken } from '../../oauth/tokens.js';
import { requestMeta, type ServerContext } from '../context.js';
import { rateLimitKey } from '../../shared/ip-address.js';
import { tooManyRequests } from './rate-limit.js';

declare module 'koa' {
  interface DefaultState {
    token?: VerifiedToken;
    authInfo?: AuthInfo;
  }
}

/** RFC 6750 §2.1: the token comes from the Authorization header only, never the query string. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header.trim());
  return match ? match[1] : undefined;
}

/** Says whether a key is seen for the first time in the current window (memory bounded). */
class OncePerWindow {
  private readonly seen = new Map<string, number>();
  constructor(private readonly windowMs: number) {}

  first(key: string, now: number): boolean {
    const last = this.seen.get(key);
    if (last !== undefined && now - last < this.windowMs) return false;
    if (this.seen.size >= 10_000) {
      for (const [k, at] of this.seen) if (now - at >= this.windowMs) this.seen.delete(k);
      if (this.seen.size >= 10_000) this.seen.clear();
    }
    this.seen.set(key, now);
    return true;
  }
}

function quoted(value: string): string {
  return value.replace(/["\\]/g, '');
}

/**
 * Authenticates every request to a protected endpoint. Failure is 401 with the RFC 9728 §5.1
 * challenge pointing at this endpoint's protected resource metadata, plus RFC 6750 §3.1
 * `error="invalid_token"` when a token was presented; the refusal is logged as `token.rejected`.
 */
export function requireBearer(server: ServerContext, resourcePath: '' | '/mcp' | '/sse') {
  const metadataUrl = `${server.settings.issuer}/.well-known/oauth-protected-resource${resourcePath}`;
  const scope = server.settings.scopes.join(' ');
  // Parsed once: a URL per request would cost more than the token check itself.
  const resourceUrls = new Map(server.settings.resources.map((r) => [r, new URL(r)]));
  const anonymous: VerifiedToken = { tokenId: 'tok_benchmark', tokenHash: 'benchmark', clientId: 'benchmark', grantId: 'benchmark', scopes: server.settings.scopes, resource: server.settings.issuer, expiresAt: Number.MAX_SAFE_INTEGER };
  const missingLog = new OncePerWindow(60_000);
  return async function authenticate(ctx: Context, next: Next): Promise<void> {
    if (server.authDisabled) {
      ctx.state.token = anonymous;
      ctx.state.authInfo = { token: anonymous.tokenId, clientId: anonymous.clientId, scopes: anonymous.scopes, extra: { tokenId: anonymous.tokenId } };
      return next();
    }
    const header = ctx.get('Authorization');
    const presented = bearerToken(header || undefined);
    let token: VerifiedToken;
    try {
      // A header in another scheme, or a malformed one, counts as a presented but invalid token.
      token = await verifyAccessToken(presented ?? (header ? 'malformed' : undefined), server);
    } catch (error) {
      if (!(error instanceof TokenRejectedError)) throw error;
      // Guessing (tokens we never issued) is limited per address; a token that was once valid
      // (expired, revoked) is not counted, so a client with a stale token still hears 401 and re-authorizes.
      if (error.reason === 'unknown' || error.reason === 'malformed') {
        const { count, retryAfter } = server.bearerFailures.hit(rateLimitKey(ctx.ip || 'unknown'));
        if (retryAfter > 0) {
          // Logged once per window, so a flood of guesses cannot flood the audit log either.
          if (count === server.limits.failedBearer.limit + 1) {
            audit(server, requestMeta(ctx), { type: 'token.rejected', detail: { reason: 'too many invalid tokens from this address', path: ctx.path.slice(0, 100) } });
          }
          return tooManyRequests(ctx, retryAfter, 'invalid-token');
        }
      }
      // A request without a token is the normal first step of discovery (RFC 9728 §5): logged
      // once per address per minute, so that unauthenticated traffic cannot wash out the log.
      if (error.reason !== 'missing' || missingLog.first(ctx.ip || 'unknown', server.clock.now())) {
        audit(server, requestMeta(ctx), {
          type: 'token.rejected',
          ...(error.token ? { client_id: error.token.clientId, token_id: error.token.tokenId } : {}),
          detail: { reason: error.reason, path: ctx.path.slice(0, 100) },
        });
      }
      const challenge = [`Bearer resource_metadata="${metadataUrl}"`, `scope="${scope}"`];
      if (error.reason !== 'missing') challenge.push('error="invalid_token"', `error_description="${quoted(error.message)}"`);
      ctx.set('WWW-Authenticate', challenge.join(', '));
      ctx.set('Cache-Control', 'no-store');
      ctx.status = 401;
      ctx.body = { error: error.reason === 'missing' ? 'unauthorized' : 'invalid_token', error_description: error.message };
      return;
    }
    ctx.state.token = token;
    ctx.state.authInfo = {
      // The SDK passes this to tool handlers: it carries the token id, never the token itself.
      token: token.tokenId,
      clientId: token.clientId,
      scopes: token.scopes,
      expiresAt: Math.floor(token.expiresAt / 1000),
      resource: resourceUrls.get(token.resource) ?? new URL(token.resource),
      extra: { tokenId: token.tokenId, grantId: token.grantId },
    };
    await next();
  };
}
