import type Router from '@koa/router';
import { authenticateClient } from '../../oauth/client-auth.js';
import { revokeToken } from '../../oauth/tokens.js';
import { param, requestMeta, type ServerContext } from '../context.js';
import { parseBody } from '../middleware/body.js';
import { rateLimit } from '../middleware/rate-limit.js';
import { noStore, readParams } from './token.js';

/** POST /revoke (RFC 7009 §2), authenticated like /token. */
export function mountRevokeRoute(router: Router, server: ServerContext): void {
  router.post('/revoke', rateLimit({ ...server.limits.revoke, clock: server.clock, name: 'revocation' }), parseBody(), async (ctx) => {
    noStore(ctx);
    const body = readParams(ctx);
    const { client } = await authenticateClient(
      { authorization: ctx.get('Authorization') || undefined, clientId: param(body, 'client_id'), clientSecret: param(body, 'client_secret') },
      server.store,
      server.clientDocuments,
    );
    await revokeToken(client, { token: param(body, 'token'), tokenTypeHint: param(body, 'token_type_hint') }, server, requestMeta(ctx));
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    ctx.status = 200;
    ctx.body = '';
  });
}
