import type Router from '@koa/router';
import { InvalidRequestError, UnsupportedGrantTypeError } from '../../oauth/errors.js';
import { exchangeAuthorizationCode, refreshAccessToken } from '../../oauth/tokens.js';
import { param, requestMeta, type ServerContext } from '../context.js';
import { auditRefusals } from '../middleware/audit-refusals.js';
import { parseBody } from '../middleware/body.js';
import { clientAuthentication } from '../middleware/client-auth.js';
import { rateLimit } from '../middleware/rate-limit.js';

/** POST /token (RFC 6749 §3.2). */
export function mountTokenRoute(router: Router, server: ServerContext): void {
  router.post(
    '/token',
    rateLimit({ ...server.limits.token, clock: server.clock, name: 'token', shared: server.shared }),
    parseBody(),
    clientAuthentication(server, '/token'),
    auditRefusals(server, '/token'),
    async (ctx) => {
      const body = ctx.state.params;
      const { record: client, method: authMethod } = ctx.state.client!;
      const meta = requestMeta(ctx);
      const grantType = param(body, 'grant_type');
      if (!grantType) throw new InvalidRequestError('grant_type is required');
      if (grantType === 'authorization_code') {
        ctx.body = await exchangeAuthorizationCode(
          client,
          {
            code: param(body, 'code'),
            codeVerifier: param(body, 'code_verifier'),
            redirectUri: param(body, 'redirect_uri'),
            resource: param(body, 'resource'),
            authMethod,
          },
          server,
          meta,
        );
        return;
      }
      if (grantType === 'refresh_token' && server.settings.refreshTokens) {
        ctx.body = await refreshAccessToken(
          client,
          { refreshToken: param(body, 'refresh_token'), scope: param(body, 'scope'), resource: param(body, 'resource'), authMethod },
          server,
          meta,
        );
        return;
      }
      throw new UnsupportedGrantTypeError(`grant_type ${JSON.stringify(grantType.slice(0, 60))} is not supported`);
    },
  );
}
