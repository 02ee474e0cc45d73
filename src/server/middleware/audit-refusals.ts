import type { Context, Next } from 'koa';
import { OAuthError } from '../../oauth/errors.js';
import { auditRejection, type ServerContext } from '../context.js';

/**
 * Records a token request refused after the client authenticated (`token.rejected`, with the
 * OAuth error and its safe description: invalid_grant, invalid_scope, …) so that "why does this
 * client not connect" has an answer in the event log. A failed client authentication is recorded
 * by clientAuthentication itself (`client.authentication_failed`).
 */
export function auditRefusals(server: ServerContext, endpoint: '/token' | '/revoke') {
  return async function recordRefusal(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (error) {
      if (error instanceof OAuthError) {
        const clientId = ctx.state.client?.record.clientId;
        // Any registered client can cause this: logged once per address, client and error per window.
        auditRejection(server, ctx, `token.rejected\u0000${endpoint}\u0000${clientId ?? ''}\u0000${error.errorCode}`, {
          type: 'token.rejected',
          ...(clientId ? { client_id: clientId } : {}),
          detail: { endpoint, error: error.errorCode, reason: error.message.slice(0, 200) },
        });
      }
      throw error;
    }
  };
}
