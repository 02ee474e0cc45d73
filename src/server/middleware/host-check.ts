import type { Context, Next } from 'koa';
import { isLoopbackHost } from '../../config/schema.js';

/**
 * DNS rebinding (MCP "Security Best Practices"; the SDK's host header validation): a web page can
 * make a browser on this machine send requests to a server bound to loopback under a name the
 * attacker controls. On a loopback bind, a request is served only when its Host names the base
 * URL's host or a loopback name; a proxy in front either keeps the public Host (Caddy) or sends
 * a loopback one (nginx's default), and both pass. Other binds are reachable by address anyway.
 */
export function checkHostOnLoopback(options: { bindHost: string; baseUrl: string }) {
  const bindHost = options.bindHost.replace(/^\[(.*)\]$/, '$1');
  if (!isLoopbackHost(bindHost)) return async (_ctx: Context, next: Next) => next();
  const expected = new URL(options.baseUrl).hostname.toLowerCase();
  return async function hostCheck(ctx: Context, next: Next): Promise<void> {
    // The raw header, never X-Forwarded-Host.
    const header = ctx.req.headers.host;
    if (header === undefined) return next();
    let hostname: string;
    try {
      hostname = new URL(`http://${header}`).hostname.toLowerCase();
    } catch {
      hostname = '';
    }
    if (hostname === expected || isLoopbackHost(hostname.replace(/^\[(.*)\]$/, '$1')) || hostname === '[::1]') return next();
    ctx.status = 403;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      error: 'invalid_request',
      error_description:
        `this server answers to ${expected} and loopback names only ` + `(Host ${JSON.stringify(header.slice(0, 100))} refused: DNS rebinding protection)`,
    };
  };
}
