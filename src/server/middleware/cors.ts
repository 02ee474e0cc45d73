import type { Context, Next } from 'koa';

// Mcp-Method and Mcp-Name: every 2026-07-28 request carries them (MCP 2026-07-28 "Transports", SEP-2243).
const ALLOW_HEADERS = 'Authorization, Content-Type, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID, Accept';
const EXPOSE_HEADERS = 'WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version';
const ALLOW_METHODS = 'GET, HEAD, POST, DELETE, OPTIONS';

/** Paths open to browser-based clients (DESIGN.md §4). /authorize is a navigation, not an API. */
const CORS_PATH = /^\/(\.well-known\/|register$|token$|revoke$|mcp$|sse$|messages\/?$|tools(\/|$))/;
/** Where a browser page of a foreign origin could act with a token (MCP transports: validate Origin). */
const PROTECTED_PATH = /^\/(mcp$|sse$|messages\/?$|tools(\/|$))/;

/**
 * CORS for the API: preflight answered before authentication, `*` or the configured origins.
 * No cookies are ever accepted on these paths, so a wildcard origin cannot ride a session.
 */
export function cors(origins: string[]) {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return async function corsMiddleware(ctx: Context, next: Next): Promise<void> {
    if (!CORS_PATH.test(ctx.path)) return next();
    const origin = ctx.get('Origin');
    const allowOrigin = any ? '*' : origin && allowed.has(origin) ? origin : undefined;
    if (allowOrigin) {
      ctx.set('Access-Control-Allow-Origin', allowOrigin);
      if (!any) ctx.vary('Origin');
      ctx.set('Access-Control-Expose-Headers', EXPOSE_HEADERS);
    }
    // MCP Streamable HTTP §Security: servers must validate Origin to stop DNS rebinding.
    if (!any && origin && !allowOrigin && PROTECTED_PATH.test(ctx.path) && ctx.method !== 'OPTIONS') {
      ctx.status = 403;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'forbidden_origin', error_description: 'this Origin is not allowed by cors.origins' };
      return;
    }
    if (ctx.method === 'OPTIONS') {
      if (allowOrigin) {
        ctx.set('Access-Control-Allow-Methods', ALLOW_METHODS);
        ctx.set('Access-Control-Allow-Headers', ALLOW_HEADERS);
        ctx.set('Access-Control-Max-Age', '86400');
      }
      ctx.status = 204;
      return;
    }
    await next();
  };
}
