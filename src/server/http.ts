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
