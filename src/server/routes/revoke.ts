import type Router from '@koa/router';
import { revokeToken } from '../../oauth/tokens.js';
import { param, requestMeta, type ServerContext } from '../context.js';
import { parseBody } from '../middleware/body.js';
import { clientAuthentication } from '../middleware/client-auth.js';
import { rateLimit } from '../middleware/rate-limit.js';

/** POST /revoke (RFC 7009 §2), authenticated like /token. */
export function mountRevokeRoute(router: Router, server: ServerContext): void {
  router.post(
    '/revoke',
    rateLimit({ ...server.limits.revoke, clock: server.clock, name: 'revocation', shared: server.shared }),
    parseBody(),
    clientAuthentication(server, '/revoke'),
    async (ctx) => {
      const body = ctx.state.params;
      await revokeToken(ctx.state.client!.record, { token: param(body, 'token'), tokenTypeHint: param(body, 'token_type_hint') }, server, requestMeta(ctx));
      // RFC 7009 §2.2: 200 whether or not the token was valid.
      ctx.status = 200;
      ctx.body = '';
    },
  );
}
