import type Router from '@koa/router';
import type { Context } from 'koa';
import { listToolsAs } from '../../mcp/list-tools.js';
import type { McpRuntime } from '../../mcp/runtime.js';
import { OAuthError } from '../../oauth/errors.js';
import { ensureFirstPartyClient, FIRST_PARTY_CLIENT_NAME } from '../../oauth/first-party.js';
import { revokeTokens } from '../../oauth/revoke.js';
import { signInAuthorizationUrl, SignInTests } from '../../oauth/sign-in-test.js';
import { SharedSignInTests, type SignInTestStore } from '../../oauth/shared-state.js';
import { audit, exchangeAuthorizationCode, TokenRejectedError, verifyAccessToken, type VerifiedToken } from '../../oauth/tokens.js';
import { formatDistance } from '../../shared/durations.js';
import { auditRejection, param, requestMeta, type ServerContext } from '../context.js';
import { authInfoFor } from '../middleware/bearer.js';
import { parseBody } from '../middleware/body.js';
import { rateLimit } from '../middleware/rate-limit.js';
import { describeAuthorizationError, renderSignedIn, renderSignedOut, renderSignInProblem } from '../views/sign-in-result.js';
import { securePage } from '../http.js';
import { browserBinding } from '../browser-cookie.js';

const BROWSER_COOKIE = 'cupcake_signin';
const TOKEN_ID = /^tok_[0-9a-f]{12}$/;

/** One query parameter given once, as a string (RFC 6749 §3.1), else undefined. */
function single(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * The home page's test sign-in: this server acting as its own first-party client (RFC 6749
 * §4.1 with PKCE) against its own authorization endpoint, so the owner can prove a deployment in
 * a browser before adding it to ChatGPT or Claude.
 *
 * - `GET /oauth/start`: binds a cookie, keeps state and verifier server-side, redirects to /authorize.
 * - `GET /oauth/callback`: checks state against this browser's pending test (single use, expiring),
 *   exchanges the code through the same logic as POST /token, lists the tools the token sees
 *   through the same code path as /mcp. The token never reaches the page or a URL.
 * - `POST /oauth/sign-out`: revokes that token (CSRF field bound to the cookie and the token id).
 */
export function mountSignInTestRoutes(router: Router, server: ServerContext, mcp: McpRuntime): void {
  // Replicas on one Redis share the tests (started on one, finished on another); else in memory.
  const tests: SignInTestStore = server.shared ? new SharedSignInTests(server.shared, server.clock) : new SignInTests(server.clock);
  const { settings, config } = server;
  const basePath = new URL(settings.issuer).pathname.replace(/\/+$/, '');
  const homeUrl = `${settings.issuer}/`;
  const secureCookie = settings.issuer.startsWith('https:');

  const problem = (ctx: Context, status: number, view: { title: string; message: string; detail?: string | undefined }) => {
    securePage(ctx);
    ctx.status = status;
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = renderSignInProblem({ serverName: config.name, homeUrl, ...view });
  };

  // Anyone can start a test sign-in or answer one: both are limited per address and their
  // refusals logged once per address per window (limits.signIn, limits.rejectionLogWindowMs).
  const signInLimit = rateLimit({ ...server.limits.signIn, clock: server.clock, name: 'sign-in test', shared: server.shared });
  router.get('/oauth/start', signInLimit, async (ctx) => {
    const meta = requestMeta(ctx);
    const client = await ensureFirstPartyClient(server, meta, 'home page');
    const binding = browserBinding(ctx, BROWSER_COOKIE, { path: `${basePath}/oauth`, secure: secureCookie });
    const test = await tests.start(binding, { clientId: client.clientId, redirectUri: client.redirectUris[0]! });
    auditRejection(server, ctx, 'signin.started', { type: 'signin.started', client_id: client.clientId });
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.status = 302;
    ctx.set('Location', signInAuthorizationUrl(test, settings));
    ctx.body = '';
  });

  router.get('/oauth/callback', signInLimit, async (ctx) => {
    const meta = requestMeta(ctx);
    const query = ctx.query;
    const state = single(query.state);
    const refuse = (reason: string, clientId?: string) => {
      auditRejection(server, ctx, `signin.failed\u0000${reason}`, { type: 'signin.failed', ...(clientId ? { client_id: clientId } : {}), detail: { reason } });
      problem(ctx, 400, {
        title: 'This sign-in cannot be completed',
        message:
          `It was already completed, has expired, or was not started in this browser from ${homeUrl} ` +
          '(the address matters: the browser keeps the sign-in per address). Nothing was exchanged.',
      });
    };
    if (!state || state.length > 200) return refuse('missing state');
    const taken = await tests.take(state, ctx.cookies.get(BROWSER_COOKIE));
    if (taken.outcome !== 'ok') return refuse(taken.outcome === 'unknown' ? 'unknown or used state' : taken.outcome);
    const { test } = taken;
    const fail = (status: number, reason: string, view: { title: string; message: string; detail?: string | undefined }) => {
      auditRejection(server, ctx, `signin.failed\u0000${reason}`, { type: 'signin.failed', client_id: test.clientId, detail: { reason } });
      problem(ctx, status, view);
    };

    // RFC 9207 §2.4: we advertise `iss`, so the response must carry our issuer (mix-up defence).
    if (single(query.iss) !== settings.issuer) {
      return fail(400, 'iss mismatch', {
        title: 'Answer from another server',
        message: `The answer did not come from ${settings.issuer}, so it was not used.`,
      });
    }
    const error = single(query.error);
    if (error !== undefined) {
      const words = describeAuthorizationError(error.slice(0, 100));
      auditRejection(server, ctx, 'signin.failed\u0000authorization error', {
        type: 'signin.failed',
        client_id: test.clientId,
        detail: { reason: 'authorization error', error: error.slice(0, 100) },
      });
      return problem(ctx, 200, { ...words, detail: single(query.error_description)?.slice(0, 300) });
    }
    const code = single(query.code);
    if (!code) return fail(400, 'missing code', { title: 'No authorization code', message: 'The answer carried neither a code nor an error.' });
    const client = await server.store.getClient(test.clientId);
    if (!client)
      return fail(400, 'client removed', {
        title: 'The built-in client is gone',
        message: 'It was removed while you signed in. Go back and start again: it is created anew.',
      });

    let token: string;
    try {
      const response = await exchangeAuthorizationCode(client, { code, codeVerifier: test.codeVerifier, redirectUri: test.redirectUri }, server, meta);
      token = response.access_token;
    } catch (caught) {
      if (!(caught instanceof OAuthError)) throw caught;
      return fail(400, 'code refused', {
        title: 'The code was refused',
        message: 'The token endpoint did not accept the authorization code.',
        detail: `${caught.errorCode}: ${caught.message}`,
      });
    }

    // The token is used here only, as a bearer would present it, and then dropped.
    let verified: VerifiedToken;
    try {
      verified = await verifyAccessToken(token, server);
    } catch (caught) {
      if (!(caught instanceof TokenRejectedError)) throw caught;
      return fail(500, 'token refused', {
        title: 'The token does not work',
        message: 'A token was issued, but this server refuses it. Check baseUrl in the config.',
        detail: caught.message,
      });
    }
    // The AuthInfo the bearer middleware would hand to a session for this token.
    const tools = await listToolsAs(mcp.createServer, authInfoFor(verified));
    const { tokenId, expiresAt } = verified;
    audit(server, meta, { type: 'signin.completed', client_id: client.clientId, token_id: tokenId, detail: { tools: tools.length } });

    securePage(ctx);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = renderSignedIn({
      serverName: config.name,
      clientName: client.clientName ?? FIRST_PARTY_CLIENT_NAME,
      tokenId,
      scope: verified.scopes.join(' '),
      resource: verified.resource,
      expiresAt: new Date(expiresAt).toISOString(),
      // Rounded up to the minute: a fresh 24 h token reads "1 d", not "23 h".
      expiresIn: formatDistance(Math.ceil((expiresAt - server.clock.now()) / 60_000) * 60_000),
      tools: tools.map((t) => ({ name: t.name, title: t.title, description: t.description })),
      signOutAction: `${basePath}/oauth/sign-out`,
      csrfToken: await tests.formToken('sign-out', test.browserBinding, tokenId),
      homeUrl,
    });
  });

  router.post('/oauth/sign-out', parseBody(), async (ctx) => {
    const meta = requestMeta(ctx);
    const body = ctx.request.body;
    const tokenId = param(body, 'token_id') ?? '';
    const csrf = param(body, 'csrf_token') ?? '';
    if (!TOKEN_ID.test(tokenId) || !(await tests.checkFormToken(csrf, 'sign-out', ctx.cookies.get(BROWSER_COOKIE), tokenId))) {
      return problem(ctx, 400, {
        title: 'This form has expired',
        message: 'It was not opened in this browser, or the server restarted since. Revoke the token with "cupcake-mcp tokens revoke" instead.',
      });
    }
    await revokeTokens(server, { ids: [tokenId] }, { by: 'home page' }, meta);
    securePage(ctx);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = renderSignedOut({ serverName: config.name, tokenId, homeUrl });
  });
}
