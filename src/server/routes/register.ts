import type Router from '@koa/router';
import { InvalidClientMetadataError } from '../../oauth/errors.js';
import { registerClient } from '../../oauth/registration.js';
import { audit } from '../../oauth/tokens.js';
import { redirectTarget } from '../../oauth/redirect-target.js';
import { requestMeta, type ServerContext } from '../context.js';
import { parseBody } from '../middleware/body.js';
import { rateLimit } from '../middleware/rate-limit.js';

/** RFC 7591 §3: dynamic client registration. */
export function mountRegisterRoute(router: Router, server: ServerContext): void {
  router.post(
    '/register',
    rateLimit({ ...server.limits.register, clock: server.clock, name: 'registration', shared: server.shared }),
    parseBody(),
    async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.set('Pragma', 'no-cache');
      // RFC 7591 §3.1: the metadata is sent as a JSON document.
      if (!ctx.is('application/json')) throw new InvalidClientMetadataError('send the client metadata as application/json (RFC 7591 §3.1)');
      const { client, response, removedClientIds } = await registerClient(ctx.request.body, { ...server, keepUnapproved: server.limits.unapprovedClients });
      if (removedClientIds.length > 0) {
        // One line per pruning, not per client: the log must not grow with the flood.
        audit(server, requestMeta(ctx), {
          type: 'client.removed',
          detail: {
            by: 'serve',
            reason: `more than ${server.limits.unapprovedClients} registrations never approved`,
            removed: removedClientIds.length,
            oldest: removedClientIds[0],
          },
        });
      }
      audit(server, requestMeta(ctx), {
        type: 'client.registered',
        client_id: client.clientId,
        detail: {
          client_name: client.clientName,
          redirect_hosts: [...new Set(client.redirectUris.map(redirectTarget))],
          token_endpoint_auth_method: client.tokenEndpointAuthMethod,
        },
      });
      ctx.status = 201;
      ctx.body = response;
    },
  );
}
