import type Router from '@koa/router';
import type { Context } from 'koa';
import { authenticateClient } from '../../oauth/client-auth.js';
import { InvalidRequestError, UnsupportedGrantTypeError } from '../../oauth/errors.js';
import { exchangeAuthorizationCode, refreshAccessToken } from '../../oauth/tokens.js';
import { malformedParams, param, requestMeta, type ServerContext } from '../context.js';
import { parseBody } from '../middleware/body.js';
import { rateLimit } from '../middleware/rate-limit.js';

const TOKEN_PARAMS = ['grant_type', 'code', 'code_verifier', 'redirect_uri', 'refresh_token', 'scope', 'resource', 'client_id', 'client_secret', 'token', 'token_type_hint'];

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

/** POST /token (RFC 6749 §3.2). */
export function mountTokenRoute(router: Router, server: ServerContext): void {
  router.post('/token', rateLimit({ ...server.limits.token, clock: server.clock, name: 'token' }), parseBody(), async (ctx) => {
    noStore(ctx);
    const body = readParams(ctx);
    const meta = requestMeta(ctx);
    const { client } = await authenticateClient(
      { authorization: ctx.get('Authorization') || undefined, clientId: param(body, 'client_id'), clientSecret: param(body, 'client_secret') },
      server.store,
      server.clientDocuments,
    );
    const grantType = param(body, 'grant_type');
    if (!grantType) throw new InvalidRequestError('grant_type is required');
    if (grantType === 'authorization_code') {
      ctx.body = await exchangeAuthorizationCode(
        client,
        { code: param(body, 'code'), codeVerifier: param(body, 'code_verifier'), redirectUri: param(body, 'redirect_uri'), resource: param(body, 'resource') },
        server,
        meta,
      );
      return;
    }
    if (grantType === 'refresh_token' && server.settings.refreshTokens) {
      ctx.body = await refreshAccessToken(client, { refreshToken: param(body, 'refresh_token'), scope: param(body, 'scope'), resource: param(body, 'resource') }, server, meta);
      return;
    }
    throw new UnsupportedGrantTypeError(`grant_type ${JSON.stringify(grantType.slice(0, 60))} is not supported`);
  });
}
