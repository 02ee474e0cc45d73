import type { Context, Next } from 'koa';
import { authenticateClient, claimedClient } from '../../oauth/client-auth.js';
import { OAuthError } from '../../oauth/errors.js';
import type { ClientRecord, TokenEndpointAuthMethod } from '../../store/types.js';
import { auditRejection, param, type ServerContext } from '../context.js';
import { noStore, readParams } from '../http.js';

declare module 'koa' {
  interface DefaultState {
    /** The client that authenticated at /token or /revoke, and how. */
    client?: { record: ClientRecord; method: TokenEndpointAuthMethod };
    /** The request's OAuth parameters (form or JSON body). */
    params?: unknown;
  }
}

/**
 * Client authentication for the token and revocation endpoints (RFC 6749 §2.3): reads the
 * parameters, authenticates the client by any method it may use, and leaves it in `ctx.state`.
 * A refusal is 401 invalid_client (the error handler answers it) and one `client.authentication_failed` event.
 */
export function clientAuthentication(server: ServerContext, endpointPath: '/token' | '/revoke') {
  const endpoint = `${server.settings.issuer}${endpointPath}`;
  return async function authenticate(ctx: Context, next: Next): Promise<void> {
    noStore(ctx);
    const body = readParams(ctx);
    const credentials = {
      authorization: ctx.get('Authorization') || undefined,
      clientId: param(body, 'client_id'),
      clientSecret: param(body, 'client_secret'),
      clientAssertion: param(body, 'client_assertion'),
      clientAssertionType: param(body, 'client_assertion_type'),
    };
    try {
      const { client, method } = await authenticateClient(credentials, endpoint, server);
      ctx.state.client = { record: client, method };
      ctx.state.params = body;
    } catch (error) {
      if (error instanceof OAuthError && error.status === 401) {
        const { clientId, method } = claimedClient(credentials);
        // Anyone can send this: logged once per address, claimed client and method per window (SECURITY.md).
        auditRejection(server, ctx, `client.authentication_failed\u0000${endpointPath}\u0000${(clientId ?? '').slice(0, 200)}\u0000${method}`, {
          type: 'client.authentication_failed',
          ...(clientId ? { client_id: clientId } : {}),
          detail: { endpoint: endpointPath, method, reason: (error.detail ?? error.message).slice(0, 300) },
        });
      }
      throw error;
    }
    await next();
  };
}
