import type Router from '@koa/router';
import type { Context } from 'koa';
import {
  AuthorizationPageError,
  AuthorizationRedirectError,
  checkOwnerPassword,
  errorRedirect,
  issueAuthorizationCode,
  lockedMessage,
  validateAuthorizationRequest,
  type PendingAuthorization,
} from '../../oauth/authorization.js';
import { isUrlClientId, metadataDocumentHost } from '../../oauth/client-metadata-document.js';
import { clientNameIsVouched } from '../../oauth/client-name.js';
import { AccessDeniedError } from '../../oauth/errors.js';
import { audit } from '../../oauth/tokens.js';
import { redirectTarget } from '../../oauth/redirect-target.js';
import { renderConsentPage } from '../views/consent.js';
import { renderErrorPage } from '../views/error-page.js';
import { auditRejection, param, requestMeta, type ServerContext } from '../context.js';
import { parseBody } from '../middleware/body.js';
import { browserBinding } from '../browser-cookie.js';
import { securePage } from '../http.js';

const BROWSER_COOKIE = 'cupcake_consent';

function showError(ctx: Context, server: ServerContext, status: number, title: string, message: string, link?: { href: string; label: string }): void {
  securePage(ctx);
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = renderErrorPage(title, message, server.config.name, link);
}

function showConsent(ctx: Context, server: ServerContext, entry: PendingAuthorization, status = 200, error?: string): void {
  const { request } = entry;
  securePage(ctx, request.redirectUri);
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = renderConsentPage({
    serverName: server.config.name,
    clientName: request.client.clientName,
    clientId: request.client.clientId,
    redirectUri: request.redirectUri,
    scopes: request.scopes,
    resource: request.resource,
    requestId: entry.id,
    csrfToken: entry.csrfToken,
    formAction: authorizePath(server),
    verifiedHost: metadataDocumentHost(request.client.clientId),
    nameVouched: clientNameIsVouched(request.client, request.redirectUri),
    toolScopes: server.settings.toolScopes,
    ...(error ? { error } : {}),
  });
}

/**
 * The path of the advertised authorization_endpoint as the browser sees it: "/authorize", or
 * "/prefix/authorize" when baseUrl has a path (a proxy that strips it). URLs are built from
 * baseUrl (DESIGN.md §4), so the form posts and the cookie is scoped where the browser is.
 */
function authorizePath(server: ServerContext): string {
  return `${new URL(server.settings.issuer).pathname.replace(/\/+$/, '')}/authorize`;
}

function redirect(ctx: Context, location: string): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.status = 302;
  ctx.set('Location', location);
  ctx.body = '';
}

/**
 * GET /authorize validates and shows the consent page; POST /authorize takes the owner's answer
 * (RFC 6749 §4.1.1–§4.1.2, OAuth 2.1 §4.1, RFC 9207).
 */
export function mountAuthorizeRoutes(router: Router, server: ServerContext): void {
  const secureCookie = server.settings.issuer.startsWith('https:');

  router.get('/authorize', async (ctx) => {
    let request;
    try {
      request = await validateAuthorizationRequest(ctx.query, server);
    } catch (error) {
      if (error instanceof AuthorizationPageError) return showError(ctx, server, error.status, error.title, error.message, error.link);
      if (error instanceof AuthorizationRedirectError) {
        auditRejection(server, ctx, `authorization.denied\u0000${error.clientId}\u0000${error.error.errorCode}`, {
          type: 'authorization.denied',
          client_id: error.clientId,
          detail: { error: error.error.errorCode, reason: error.error.message },
        });
        return redirect(ctx, error.redirectTo);
      }
      throw error;
    }
    const entry = await server.pending.create(request, browserBinding(ctx, BROWSER_COOKIE, { path: authorizePath(server), secure: secureCookie }));
    // Opening a consent page proves nothing: logged once per address and client per window.
    auditRejection(server, ctx, `authorization.requested\u0000${request.client.clientId}`, {
      type: 'authorization.requested',
      client_id: request.client.clientId,
      detail: { redirect_host: redirectTarget(request.redirectUri), scope: request.scopes.join(' '), resource: request.resource },
    });
    showConsent(ctx, server, entry);
  });

  router.post('/authorize', parseBody(), async (ctx) => {
    const meta = requestMeta(ctx);
    const body = ctx.request.body;
    const entry = await server.pending.find(param(body, 'request_id') ?? '', param(body, 'csrf_token') ?? '', ctx.cookies.get(BROWSER_COOKIE));
    if (!entry) {
      return showError(
        ctx,
        server,
        400,
        'This form has expired',
        'This consent form was already answered, has expired, or was not opened in this browser. Start the connection again from your application.',
      );
    }
    const { request } = entry;
    const clientId = request.client.clientId;
    const decision = param(body, 'decision');

    if (decision === 'deny') {
      if (!(await server.pending.consume(entry.id))) return showError(ctx, server, 400, 'Already answered', 'This consent form was already answered.');
      audit(server, meta, { type: 'authorization.denied', client_id: clientId, detail: { reason: 'denied by the owner' } });
      return redirect(ctx, errorRedirect(request.redirectUri, new AccessDeniedError('the owner denied the request'), request.state, server.settings.issuer));
    }
    if (decision !== 'approve') return showConsent(ctx, server, entry, 400, 'Choose Approve or Deny.');

    const address = meta.ip ?? 'unknown';
    const owner = await server.store.getOwner();
    server.loginThrottle.forgetBefore(Math.max(owner.passwordChangedAt ?? 0, owner.lockoutsClearedAt ?? 0));
    if (!(await server.loginThrottle.begin(address))) {
      const retryAfter = await server.loginThrottle.retryAfterSeconds(address);
      ctx.set('Retry-After', String(retryAfter));
      return showError(ctx, server, 429, 'Too many attempts', lockedMessage(retryAfter));
    }
    const password = param(body, 'password') ?? '';
    let correct: boolean;
    try {
      correct = password.length > 0 && password.length <= 1024 && (await checkOwnerPassword(password, server.store));
    } catch (error) {
      await Promise.resolve(server.loginThrottle.end(address, { failed: false })).catch(() => undefined);
      throw error;
    }
    const locked = await server.loginThrottle.end(address, { failed: !correct });
    if (!correct) {
      audit(server, meta, { type: 'login.failed', client_id: clientId });
      if (locked) {
        const { limit, windowMs } = server.loginThrottle;
        audit(server, meta, {
          type: 'login.locked',
          client_id: clientId,
          detail: { reason: `${limit} failed attempts in ${Math.round(windowMs / 60_000)} minutes` },
        });
        const retryAfter = await server.loginThrottle.retryAfterSeconds(address);
        ctx.set('Retry-After', String(retryAfter));
        return showError(ctx, server, 429, 'Too many attempts', lockedMessage(retryAfter));
      }
      return showConsent(ctx, server, entry, 401, 'Wrong password. Try again.');
    }

    // Single use: of two concurrent approvals only the first issues a code.
    if (!(await server.pending.consume(entry.id))) return showError(ctx, server, 400, 'Already answered', 'This consent form was already answered.');
    // A metadata-document client is kept once approved: `clients list` shows it, `clients remove` revokes it, its refresh tokens rotate.
    if (isUrlClientId(clientId) && (await server.store.upsertClient(request.client)) === 'created') {
      audit(server, meta, {
        type: 'client.registered',
        client_id: clientId,
        detail: {
          client_name: request.client.clientName,
          via: 'client metadata document',
          redirect_hosts: [...new Set(request.client.redirectUris.map(redirectTarget))],
          token_endpoint_auth_method: request.client.tokenEndpointAuthMethod,
        },
      });
    }
    const { redirectTo, grantId } = await issueAuthorizationCode(request, server);
    audit(server, meta, { type: 'authorization.approved', client_id: clientId, detail: { scope: request.scopes.join(' '), resource: request.resource } });
    audit(server, meta, { type: 'code.issued', client_id: clientId, detail: { grant_id: grantId } });
    redirect(ctx, redirectTo);
  });
}
