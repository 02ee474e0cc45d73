import type { Context, Next } from 'koa';
import type { AuthInfo } from '@modelcontextprotocol/server';
import { TokenRejectedError, audit, type VerifiedToken } from '../../oauth/tokens.js';
import { auditRejection, requestMeta, type ServerContext } from '../context.js';
import { rateLimitKey } from '../../shared/ip-address.js';
import { tooManyRequests } from './rate-limit.js';
import { missingScopes, RESOURCE_SCOPE, scopesForTool } from '../../oauth/scopes.js';

declare module 'koa' {
  interface DefaultState {
    token?: VerifiedToken;
    authInfo?: AuthInfo;
  }
}

/** RFC 6750 §2.1: the token comes from the Authorization header only, never the query string. */
/**
 * The AuthInfo the MCP SDK hands to a session and its tool handlers for a verified token: it
 * carries the token id, never the token itself.
 */
export function authInfoFor(token: VerifiedToken, resource: URL = new URL(token.resource)): AuthInfo {
  return {
    token: token.tokenId,
    clientId: token.clientId,
    scopes: token.scopes,
    expiresAt: Math.floor(token.expiresAt / 1000),
    resource,
    extra: { tokenId: token.tokenId, grantId: token.grantId },
  };
}

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header.trim());
  return match ? match[1] : undefined;
}

function quoted(value: string): string {
  return value.replace(/["\\]/g, '');
}

/**
 * RFC 6750 §3.1: 403 `insufficient_scope`, with a challenge naming every scope the request needs,
 * so that a client can ask the owner for them (MCP authorization: step-up).
 */
export function insufficientScope(ctx: Context, resourceMetadataUrl: string, needed: readonly string[]): void {
  const scope = needed.join(' ');
  ctx.set(
    'WWW-Authenticate',
    `Bearer error="insufficient_scope", scope="${quoted(scope)}", resource_metadata="${resourceMetadataUrl}", ` +
      `error_description="this request needs the scope ${quoted(scope)}"`,
  );
  ctx.set('Cache-Control', 'no-store');
  ctx.status = 403;
  ctx.body = {
    error: 'insufficient_scope',
    error_description: `this request needs the scope${needed.length > 1 ? 's' : ''} ${scope}; authorize again asking for ${needed.length > 1 ? 'them' : 'it'}`,
    scope,
  };
}

/** The tool names a JSON-RPC body (one message or a batch) asks to call. */
function calledTools(body: unknown): string[] {
  const messages = Array.isArray(body) ? body : [body];
  const names: string[] = [];
  for (const m of messages) {
    if (typeof m !== 'object' || m === null || (m as { method?: unknown }).method !== 'tools/call') continue;
    const name = (m as { params?: { name?: unknown } }).params?.name;
    if (typeof name === 'string') names.push(name);
  }
  return names;
}

/**
 * Checks the scopes of the tools a request calls (auth.toolScopes) after the body is read: on
 * POST /mcp and /messages the JSON-RPC tools/call names, on POST /tools/<name> the path. A call
 * outside the token's scopes is refused before it reaches the tool, with the scopes it needs.
 */
export function requireToolScopes(
  server: ServerContext,
  resourcePath: '' | '/mcp' | '/sse',
  toolsOf: (ctx: Context) => string[] = (ctx) => calledTools(ctx.request.body),
) {
  const metadataUrl = `${server.settings.issuer}/.well-known/oauth-protected-resource${resourcePath}`;
  return async function toolScopes(ctx: Context, next: Next): Promise<void> {
    const token = ctx.state.token;
    if (!token || server.settings.toolScopes.length === 0) return next();
    for (const name of toolsOf(ctx)) {
      const needed = scopesForTool(name, server.settings);
      if (missingScopes(token.scopes, needed).length === 0) continue;
      auditRejection(server, ctx, `token.rejected\u0000insufficient scope\u0000${token.tokenId}\u0000${name}`, {
        type: 'token.rejected',
        client_id: token.clientId,
        token_id: token.tokenId,
        detail: { reason: 'insufficient scope', tool: name.slice(0, 100), needed: needed.join(' ') },
      });
      return insufficientScope(ctx, metadataUrl, needed);
    }
    return next();
  };
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
  return async function authenticate(ctx: Context, next: Next): Promise<void> {
    const header = ctx.get('Authorization');
    const presented = bearerToken(header || undefined);
    let token: VerifiedToken;
    try {
      // A header in another scheme, or a malformed one, counts as a presented but invalid token.
      token = await server.tokenVerifier.verifyAccessToken(presented ?? (header ? 'malformed' : undefined));
    } catch (error) {
      if (!(error instanceof TokenRejectedError)) throw error;
      // Every presented token that does not work is counted per address: guessing (unknown,
      // malformed) strictly, replaying old ones (expired, revoked, another audience) on a budget of
      // its own, so that a client with a stale token hears 401 and signs in again long before it.
      if (error.reason !== 'missing') {
        const guessing = error.reason === 'unknown' || error.reason === 'malformed';
        const limiter = guessing ? server.bearerFailures : server.staleBearers;
        const { count, retryAfter } = await limiter.hit(rateLimitKey(ctx.ip || 'unknown'));
        if (retryAfter > 0) {
          // Logged once per window, so a flood of guesses cannot flood the audit log either.
          if (count === (guessing ? server.limits.failedBearer : server.limits.staleBearer).limit + 1) {
            audit(server, requestMeta(ctx), {
              type: 'token.rejected',
              detail: { reason: 'too many invalid tokens from this address', path: ctx.path.slice(0, 100) },
            });
          }
          return tooManyRequests(ctx, retryAfter, 'invalid-token');
        }
      }
      // A refusal proves nothing: logged once per address, reason and token per window (a request
      // without a token is the normal first step of discovery, RFC 9728 §5).
      auditRejection(server, ctx, `token.rejected\u0000${error.reason}\u0000${error.token?.tokenId ?? ''}`, {
        type: 'token.rejected',
        ...(error.token ? { client_id: error.token.clientId, token_id: error.token.tokenId } : {}),
        detail: { reason: error.reason, path: ctx.path.slice(0, 100) },
      });
      const challenge = [`Bearer resource_metadata="${metadataUrl}"`, `scope="${scope}"`];
      if (error.reason !== 'missing') challenge.push('error="invalid_token"', `error_description="${quoted(error.message)}"`);
      ctx.set('WWW-Authenticate', challenge.join(', '));
      ctx.set('Cache-Control', 'no-store');
      ctx.status = 401;
      ctx.body = { error: error.reason === 'missing' ? 'unauthorized' : 'invalid_token', error_description: error.message };
      return;
    }
    // The token must hold the resource scope to reach any MCP endpoint or tool (RFC 6750 §3.1).
    if (!token.scopes.includes(RESOURCE_SCOPE)) {
      auditRejection(server, ctx, `token.rejected\u0000insufficient scope\u0000${token.tokenId}`, {
        type: 'token.rejected',
        client_id: token.clientId,
        token_id: token.tokenId,
        detail: { reason: 'insufficient scope', needed: RESOURCE_SCOPE, path: ctx.path.slice(0, 100) },
      });
      return insufficientScope(ctx, metadataUrl, [RESOURCE_SCOPE]);
    }
    ctx.state.token = token;
    ctx.state.authInfo = authInfoFor(token, resourceUrls.get(token.resource));
    await next();
  };
}
