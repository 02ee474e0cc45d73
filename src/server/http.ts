import type { Context } from 'koa';
import { InvalidRequestError } from '../oauth/errors.js';
import { malformedParams } from './context.js';

/** Response helpers every route shares. */

/** The OAuth parameters of /token and /revoke; each may appear at most once (RFC 6749 §3.2). */
const TOKEN_PARAMS = [
  'grant_type',
  'code',
  'code_verifier',
  'redirect_uri',
  'refresh_token',
  'scope',
  'resource',
  'client_id',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
  'token',
  'token_type_hint',
];

/** RFC 6749 §3.2: form-encoded (JSON also accepted), each parameter at most once. */
export function readParams(ctx: Context): unknown {
  const body = ctx.request.body;
  if (!ctx.is('application/x-www-form-urlencoded', 'application/json')) {
    throw new InvalidRequestError('send the parameters as application/x-www-form-urlencoded (RFC 6749 §4.1.3)');
  }
  const repeated = malformedParams(body, TOKEN_PARAMS);
  if (repeated.length > 0) throw new InvalidRequestError(`${repeated.join(', ')} must be given once, as a string (RFC 6749 §3.2)`);
  return body;
}

export function noStore(ctx: Context): void {
  // RFC 6749 §5.1: responses with tokens or credentials must not be cached.
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
}

/** Anti-framing, no caching, no referrer, and a CSP that lets the form post only to us (also the home and sign-in test pages). */
export function securePage(ctx: Context, formTarget?: string): void {
  let formAction = "'self'";
  if (formTarget) {
    // Chromium applies form-action to the redirect that answers the form, so the client's
    // redirect origin (or app scheme) must be allowed as well.
    try {
      const url = new URL(formTarget);
      formAction += url.protocol === 'https:' || url.protocol === 'http:' ? ` ${url.origin}` : ` ${url.protocol}`;
    } catch {
      /* validated before; nothing to add */
    }
  }
  ctx.set(
    'Content-Security-Policy',
    `default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
  );
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  noStore(ctx);
}

export type RpcId = string | number | null;

/** A JSON-RPC error body for refusals on the MCP endpoints; it carries the request's id when one is known. */
export function rpcError(ctx: Context, status: number, code: number, message: string, id: RpcId = null, data?: unknown): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { jsonrpc: '2.0', id, error: { code, message, ...(data === undefined ? {} : { data }) } };
}
